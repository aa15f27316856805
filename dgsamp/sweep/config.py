"""Load a W&B sweep YAML and check the parts ``dgsamp sweep`` needs to expand it.

The file is W&B's own format, so ``wandb sweep FILE`` accepts it unchanged:

    name: pacs_erm
    method: grid                       # grid | random | bayes (bayes: wandb agent only)
    metric: {name: ood_acc, goal: maximize}
    program: dgsamp
    command: [${env}, ${program}, train, ${args}]
    parameters:
      dataset: {value: PACS}
      test_envs: {values: [0, 1, 2, 3]}
      lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-3}

``command`` must call ``dgsamp train`` (the token ``train``) and end in one of W&B's
argument macros. W&B's full JSON schema is checked by the tests; here we check what the
expansion relies on and say in one line what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dgsamp.errors import UserError

METHODS = ("grid", "random", "bayes", "custom")
TOP_LEVEL_KEYS = {
    "apiVersion", "kind", "controller", "description", "program", "entity", "project",
    "method", "command", "name", "metric", "early_terminate", "parameters", "run_cap",
}
# W&B's macros that expand to the sweep parameters, and how each formats them.
ARGS_MACROS = ("${args}", "${args_no_equals}", "${args_no_boolean_flags}")
# Macros W&B fills in before the program's own arguments (ignored by the local launchers,
# which always run ``python -m dgsamp.cli train``).
PREFIX_MACROS = ("${env}", "${interpreter}", "${program}")
FLAG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PARAMETER_KEYS = {
    "value", "values", "probabilities", "distribution", "min", "max", "mu", "sigma", "q",
    "a", "b",
}


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: where it came from, how to search and what to run."""

    path: Path
    name: str
    method: str
    parameters: dict[str, dict[str, Any]]
    train_tokens: tuple[str, ...]  # the command after ``train``: literals and one args macro
    run_cap: int | None
    raw: dict[str, Any]


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep YAML file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"sweep file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid YAML: {error}".replace("\n", " ")) from None
    return validate_sweep_config(raw, path)


def validate_sweep_config(raw: Any, path: Path) -> SweepConfig:
    """Check a parsed sweep mapping; raise a one-line UserError naming the problem."""
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a sweep file must be a YAML mapping (method, parameters, command)")
    unknown = sorted(set(raw) - TOP_LEVEL_KEYS)
    if unknown:
        raise UserError(f"{path}: unknown top-level keys {unknown}; W&B accepts {sorted(TOP_LEVEL_KEYS)}")
    method = raw.get("method")
    if method not in METHODS:
        raise UserError(f"{path}: method must be one of {list(METHODS)}, got {method!r}")
    parameters = raw.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise UserError(f"{path}: 'parameters' must be a non-empty mapping of flag name -> spec")
    for name, spec in parameters.items():
        _check_parameter(path, name, spec)
    run_cap = raw.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or run_cap < 1):
        raise UserError(f"{path}: run_cap must be a positive integer, got {run_cap!r}")
    return SweepConfig(
        path=path,
        name=str(raw.get("name") or path.stem),
        method=method,
        parameters=parameters,
        train_tokens=_train_tokens(path, raw.get("command")),
        run_cap=run_cap,
        raw=raw,
    )


def _check_parameter(path: Path, name: Any, spec: Any) -> None:
    if not isinstance(name, str) or not FLAG_NAME.fullmatch(name):
        raise UserError(f"{path}: parameter name {name!r} must be a flag name like 'lr' or 'test_envs'")
    if not isinstance(spec, dict):
        raise UserError(f"{path}: parameter '{name}' must be a mapping such as {{values: [...]}}")
    if "parameters" in spec:
        raise UserError(
            f"{path}: parameter '{name}' is a nested parameter group; dgsamp train takes flat flags, "
            "so list each flag under 'parameters' directly"
        )
    unknown = sorted(set(spec) - PARAMETER_KEYS)
    if unknown:
        raise UserError(f"{path}: parameter '{name}' has unknown keys {unknown}")
    if "values" in spec and (not isinstance(spec["values"], list) or not spec["values"]):
        raise UserError(f"{path}: parameter '{name}': 'values' must be a non-empty list")
    if not ({"value", "values", "distribution"} & set(spec) or {"min", "max"} <= set(spec)):
        raise UserError(f"{path}: parameter '{name}' needs value, values, or a distribution with min/max")


def _train_tokens(path: Path, command: Any) -> tuple[str, ...]:
    """The part of ``command`` after ``train``; it must hold exactly one args macro."""
    example = "[${env}, ${program}, train, ${args}] with program: dgsamp"
    if not isinstance(command, list) or not all(isinstance(token, str) for token in command):
        raise UserError(f"{path}: 'command' must be a list of strings such as {example}")
    if "train" not in command:
        raise UserError(f"{path}: 'command' must run dgsamp train, e.g. {example}")
    tail = tuple(command[command.index("train") + 1 :])
    macros = [token for token in tail if token.startswith("${")]
    if len(macros) != 1 or macros[0] not in ARGS_MACROS:
        raise UserError(
            f"{path}: after 'train' the command needs exactly one of {list(ARGS_MACROS)} "
            f"(the sweep parameters as flags); found {macros or 'none'}"
        )
    return tail
