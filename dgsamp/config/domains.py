"""Which domains a run trains on and adapts to: ``--test_envs`` (DG), ``--source``/``--target`` (DA).

Domains are named by folder name, by the short name of the leaderboard's columns or by
index, case-insensitively, in that order (RotatedMNIST's ``15`` is the 15° domain): on Office31, ``--source A --target W``, ``--source amazon
--target webcam`` and ``--source 0 --target 2`` are one task, labelled ``A→W`` as tllib's
tables label it (several sources or targets joined with ``+``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dgsamp.errors import UserError


@dataclass(frozen=True)
class Domains:
    """``test_envs``: held out (DG) or the targets (DA); ``source``: DA's labelled domains
    (None: every domain not in ``test_envs``); ``task``; ``task_label``: ``A→W`` in DA."""

    test_envs: tuple[int, ...]
    source: tuple[int, ...] | None
    target: tuple[int, ...] | None
    task: str
    task_label: str | None


def domain_index(name: str, dataset_class: type, flag: str) -> int:
    """The index of domain ``name`` (an index, a folder name or a short name) of ``dataset_class``."""
    names = list(dataset_class.ENVIRONMENTS)
    shorts = task_names(dataset_class)
    text = str(name).strip()
    for candidates in (names, shorts, list(dataset_class.ENVIRONMENT_SHORT_NAMES)):  # names first:
        lowered = [candidate.lower() for candidate in candidates]  # RotatedMNIST's "15" is a domain
        if text.lower() in lowered:
            return lowered.index(text.lower())
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
        return int(text)
    known = ", ".join(f"{i} {n} ({s})" for i, (n, s) in enumerate(zip(names, shorts, strict=True)))
    raise UserError(f"{flag} {text}: {dataset_class.__name__} has no such domain; its domains: {known}")


def task_names(dataset_class: type) -> list[str]:
    """The domains' names in task labels: ``TASK_SHORT_NAMES``, else the leaderboard's short names."""
    return list(dataset_class.TASK_SHORT_NAMES or dataset_class.ENVIRONMENT_SHORT_NAMES)


def task_label(dataset_class: type, source: Sequence[int], target: Sequence[int]) -> str:
    """``A→W``: short names of the sources, an arrow, short names of the targets."""
    shorts = task_names(dataset_class)
    return "+".join(shorts[i] for i in source) + "→" + "+".join(shorts[i] for i in target)


def resolve_domains(dataset_class: type, test_envs: Sequence[int] | None, source: Sequence[str] | None,
                    target: Sequence[str] | None, task: str | None) -> Domains:
    """Check the domain flags together and say which domains play which part."""
    if source is None and target is None:
        envs = _checked_test_envs(list(test_envs if test_envs is not None else [0]), dataset_class)
        task = task or "domain_generalization"
        if task == "domain_adaptation":
            train = [i for i in range(len(dataset_class.ENVIRONMENTS)) if i not in envs]
            return Domains(envs, None, envs, task, task_label(dataset_class, train, envs))
        return Domains(envs, None, None, task, None)
    if test_envs is not None:
        raise UserError("--test_envs and --source/--target both name the domains; give --source and --target "
                        "for a DA task, or --test_envs alone")
    if task == "domain_generalization":
        raise UserError("--source/--target make a domain adaptation task; drop --task domain_generalization")
    if target is None:
        raise UserError("--source needs --target: the domain(s) to adapt to")
    targets = sorted({domain_index(name, dataset_class, "--target") for name in target})
    everyone = range(len(dataset_class.ENVIRONMENTS))
    sources = sorted({domain_index(name, dataset_class, "--source") for name in source}) if source is not None \
        else [i for i in everyone if i not in targets]
    both = sorted(set(sources) & set(targets))
    if both:
        name = dataset_class.ENVIRONMENTS[both[0]]
        raise UserError(f"--source and --target both name domain {name}; a domain is either labelled or a target")
    if not sources:
        raise UserError("--target names every domain; leave at least one --source domain to train on")
    return Domains(tuple(targets), tuple(sources), tuple(targets), "domain_adaptation",
                   task_label(dataset_class, sources, targets))


def _checked_test_envs(test_envs: list[int], dataset_class: type) -> tuple[int, ...]:
    """``--test_envs`` sorted, each a domain index named once, at least one domain left to train on."""
    count = len(dataset_class.ENVIRONMENTS)
    bad = [i for i in test_envs if not 0 <= i < count]
    if bad:
        raise UserError(f"--test_envs {bad[0]} is out of range: {dataset_class.__name__} has domains 0..{count - 1}")
    repeated = sorted({i for i in test_envs if test_envs.count(i) > 1})
    if repeated:
        raise UserError(f"--test_envs names domain {repeated[0]} twice; list each test domain once")
    if len(test_envs) >= count:
        raise UserError(f"--test_envs holds all {count} domains; leave at least one for training")
    return tuple(sorted(test_envs))
