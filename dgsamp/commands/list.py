"""``dgsamp list [algorithms|datasets|backbones|modes]``: what the registries hold.

``--verbose`` describes each algorithm, to help choose one:

    CAD
        paper:    Ruan, Dubois & Maddison: ..., ICLR 2022, arXiv:2201.00057
        unlabeled target data: ignored    (or "used (domain adaptation)"; "required ...":
                                           the method trains only with a --target)
        hparams:  lmbda=0.1, temperature=0.1, ...   (its own; small-image and per-dataset
                  defaults in parentheses; the common ones are listed once at the end)
        source:   DomainBed domainbed/algorithms.py @ <commit>
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from dgsamp.errors import UserError
from dgsamp.hparams import COMMON_HPARAMS, HParam
from dgsamp.registry import ALGORITHMS, BACKBONES, DATASETS, MODES


def register(subparsers, argv: Sequence[str] = ()) -> None:
    parser = subparsers.add_parser("list", help="list registered algorithms, datasets, backbones or training modes")
    parser.add_argument("what", nargs="?", choices=("algorithms", "datasets", "backbones", "modes"), default=None)
    parser.add_argument("--filter", default="*", help="backbones: a timm wildcard, e.g. '*resnet*'")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="algorithms: paper, use of unlabeled data, hparams and source of truth")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                        help="import a file that registers more entries first (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.verbose and args.what not in (None, "algorithms"):
        raise UserError(f"--verbose describes algorithms only; drop it for `dgsamp list {args.what}`")
    sections = [args.what] if args.what else ["algorithms", "datasets", "modes", "backbones"]
    for section in sections:
        if len(sections) > 1:
            print(f"{section}:")
        if section == "algorithms" and args.verbose:
            names = [line for name in ALGORITHMS.names() for line in _algorithm_lines(name)]
            names.append("common hparams: " + _hparams_text(COMMON_HPARAMS))
        elif section == "algorithms":
            names = ALGORITHMS.names()
        elif section == "datasets":
            names = [f"{name} ({', '.join(DATASETS.get(name).ENVIRONMENTS)})" for name in DATASETS.names()]
        elif section == "modes":
            names = [_mode_line(name) for name in MODES.in_registration_order()]
        else:
            import timm

            names = [*BACKBONES.names(), *timm.list_models(args.filter)]
        for name in names:
            print(f"  {name}" if len(sections) > 1 else name)
    return 0


def _algorithm_lines(name: str) -> list[str]:
    """The name, then its paper, use of unlabeled data, own hparams and source, indented."""
    cls = ALGORITHMS.get(name)
    adapts = "ignored"
    if getattr(cls, "NEEDS_TARGET", False):
        adapts = "required (domain adaptation only: --source S --target T)"
    elif getattr(cls, "ADAPTS_TO_UNLABELED", False):
        adapts = "used (domain adaptation)"
    return [
        name,
        f"    paper:    {getattr(cls, 'PAPER', '') or 'not stated'}",
        f"    unlabeled target data: {adapts}",
        f"    hparams:  {_hparams_text(getattr(cls, 'HPARAMS', {})) or '(none of its own)'}",
        f"    source:   {getattr(cls, 'SOURCE', '') or 'not stated'}",
    ]


def _hparams_text(specs: dict[str, HParam]) -> str:
    """``name=default`` for each, with ``(small X, DomainNet Y)`` where those defaults differ."""
    parts = []
    for name, spec in specs.items():
        others = [] if spec.small_default is None else [f"small {spec.small_default!r}"]
        others += [f"{dataset} {value!r}" for dataset, value in spec.dataset_defaults.items()]
        parts.append(f"{name}={spec.default!r}" + (f" ({', '.join(others)})" if others else ""))
    return ", ".join(parts)


def _mode_line(name: str) -> str:
    """``gradsamp: GradSamp (...) [--gradsamp, --gradsamp_period, ...]``"""
    mode = MODES.get(name)
    doc = (mode.__doc__ or "").strip().splitlines()[0] if mode.__doc__ else ""
    flags = ", ".join(f"--{option}" for option in mode.OPTIONS)
    return f"{name}: {doc} [{flags}]"
