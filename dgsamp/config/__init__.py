"""A run's configuration: flags, protocol presets and the frozen ``RunConfig``.

One resolution order, visible in ``dgsamp.config.resolve``:
preset -> hparams registry -> hparams -> protocol settings -> explicit flags.
"""

from dgsamp.config.resolve import parse_run_config, resolve_run_config
from dgsamp.config.run_config import RunConfig

__all__ = ["RunConfig", "parse_run_config", "resolve_run_config"]
