"""What a protocol preset is made of: settings, each a value or a rule, and its source.

The presets themselves live in ``dgsamp.config.presets`` (DomainBed's and dgsamp's) and
``dgsamp.config.tllib_preset`` (tllib's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REPO = "facebookresearch/DomainBed"

@dataclass(frozen=True)
class Source:
    """Where a setting comes from: ``file`` at ``commit`` of DomainBed (``what`` inside it)."""

    file: str
    commit: str
    what: str

    def __str__(self) -> str:
        return f"{REPO} {self.file} @ {self.commit[:7]} ({self.what})"


DGSAMP = "dgsamp"  # the source of dgsamp's own choices


@dataclass(frozen=True)
class Setting:
    """One protocol setting: a value, or ``rule(dataset_class) -> value``, and its source."""

    value: Any
    source: Source | str
    note: str = ""

    def resolve(self, dataset_class: type, algorithm: str = "") -> Any:
        """The value for ``dataset_class`` and the registered ``algorithm`` name: a rule is
        called as ``rule(dataset_class, algorithm)``."""
        return self.value(dataset_class, algorithm) if callable(self.value) else self.value


@dataclass(frozen=True)
class Protocol:
    """A named preset. ``settings`` keys are RunConfig fields (flags) or protocol-only keys."""

    name: str
    summary: str
    settings: Mapping[str, Setting]

    def resolve(self, dataset_class: type, algorithm: str = "") -> dict[str, Any]:
        """Every setting's value for ``dataset_class`` (a registered dataset class)."""
        return {name: setting.resolve(dataset_class, algorithm) for name, setting in self.settings.items()}
