"""Name -> class registries for algorithms, datasets and backbones, and the plugin loader.

    @register_algorithm("DANN")
    class DANN(Algorithm): ...

    algorithm = create_algorithm("DANN", featurizer, num_classes, num_domains, hparams)

Built-in entries live in ``dgsamp.algorithms`` and ``dgsamp.datasets`` and are imported the
first time a registry is read. Users add their own without editing dgsamp: a file passed
with ``--plugin path.py`` or an installed package exposing the entry-point group
``dgsamp.plugins``.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from dgsamp.errors import UserError

T = TypeVar("T")

_BUILTIN_MODULES = ("dgsamp.algorithms", "dgsamp.datasets", "dgsamp.backbones.factory", "dgsamp.modes.builtin")


class Registry(Generic[T]):
    """A case-sensitive mapping from a public name to a registered object."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not obj:
                raise ValueError(f"{self.kind} '{name}' is already registered by {existing!r}")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UserError(f"unknown {self.kind} '{name}'; known: {known}") from None

    def __contains__(self, name: object) -> bool:
        load_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        load_builtins()
        return sorted(self._entries)

    def in_registration_order(self) -> list[str]:
        """Names in the order they were registered (built-ins first, then plugins)."""
        load_builtins()
        return list(self._entries)


ALGORITHMS: Registry[type] = Registry("algorithm")
DATASETS: Registry[type] = Registry("dataset")
BACKBONES: Registry[Callable[..., Any]] = Registry("backbone")

register_algorithm = ALGORITHMS.register
register_dataset = DATASETS.register
register_backbone = BACKBONES.register
MODES: Registry[type] = Registry("training mode")


def register_mode(name: str) -> Callable[[type], type]:
    """Register a TrainingMode subclass as ``name``: its switch flag is ``--name``.

    The trainer calls modes in registration order (GradSamp, ssProp, EMA, SMA, SWAD, then
    plugins), so a mode that plans the epoch's kind sees the plan of the modes before it.
    """

    def decorator(cls: type) -> type:
        load_builtins()  # a plugin's mode comes after the built-in ones
        if name not in getattr(cls, "OPTIONS", {}):
            raise ValueError(f"training mode '{name}' must declare its switch flag OPTIONS['{name}']")
        clashes = [option for option in cls.OPTIONS if option in _flags_of_other_modes(name)]
        if clashes:
            raise ValueError(f"training mode '{name}' redeclares flag --{clashes[0]}")
        cls.NAME = name
        MODES.register(name)(cls)
        _keep_builtin_modes_first()
        return cls

    return decorator


def _keep_builtin_modes_first() -> None:
    """Built-in modes in ``dgsamp.modes.builtin``'s order, then the others as registered,
    whichever module was imported first (a mode module imported directly loads the
    built-ins from inside its own decorator, so it would otherwise register last)."""
    builtin = importlib.import_module(_BUILTIN_MODULES[-1])  # loaded by name, as every built-in
    rank = {module: index for index, module in enumerate(builtin.BUILTIN_MODE_MODULES)}
    ordered = sorted(MODES._entries.items(), key=lambda item: rank.get(item[1].__module__, len(rank)))
    MODES._entries = dict(ordered)


def _flags_of_other_modes(name: str) -> set[str]:
    return {flag for other, cls in MODES._entries.items() if other != name for flag in cls.OPTIONS}

_builtins_loaded = False


def load_builtins() -> None:
    """Import the modules whose decorators fill the registries (once)."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    load_entry_point_plugins()


def import_submodules(package: str, path: list[str]) -> list[str]:
    """Import every module of ``package`` (found on its ``__path__``), in sorted order.

    A built-in package calls this from its ``__init__`` so that a new file in it registers
    its classes without being listed anywhere; returns the full module names imported.
    """
    names = sorted(info.name for info in pkgutil.iter_modules(path) if not info.name.startswith("_"))
    return [importlib.import_module(f"{package}.{name}").__name__ for name in names]


def load_entry_point_plugins() -> list[str]:
    """Import every installed ``dgsamp.plugins`` entry point; returns their names."""
    loaded = []
    for entry in entry_points(group="dgsamp.plugins"):
        entry.load()
        loaded.append(entry.name)
    return loaded


def load_plugin_file(path: str | Path) -> None:
    """Import a user's Python file so that its ``@register_*`` decorators run."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"plugin file not found: {path}")
    if path.suffix != ".py":
        raise UserError(f"plugin file must be a .py file: {path}")
    module_name = f"dgsamp_plugin_{path.stem}_{abs(hash(str(path.resolve())))}"
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except UserError:
        raise
    except Exception as error:
        del sys.modules[module_name]
        raise UserError(
            f"plugin file {path} failed to import: {type(error).__name__}: {error}"
        ) from error


def create_algorithm(name: str, featurizer, num_classes: int, num_domains: int, hparams: dict):
    """Instantiate the algorithm registered as ``name`` (DomainBed's constructor order)."""
    return ALGORITHMS.get(name)(featurizer, num_classes, num_domains, hparams)


def create_dataset(name: str, root: str | Path | None):
    """Instantiate the dataset registered as ``name`` reading from ``root``."""
    return DATASETS.get(name)(root)
