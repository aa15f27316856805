"""``dgsamp list [algorithms|datasets|backbones|modes]``: what the registries hold."""

from __future__ import annotations

import argparse

from dgsamp.registry import ALGORITHMS, BACKBONES, DATASETS, MODES


def register(subparsers) -> None:
    parser = subparsers.add_parser("list", help="list registered algorithms, datasets, backbones or training modes")
    parser.add_argument("what", nargs="?", choices=("algorithms", "datasets", "backbones", "modes"), default=None)
    parser.add_argument("--filter", default="*", help="backbones: a timm wildcard, e.g. '*resnet*'")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                        help="import a file that registers more entries first (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sections = [args.what] if args.what else ["algorithms", "datasets", "modes", "backbones"]
    for section in sections:
        if len(sections) > 1:
            print(f"{section}:")
        if section == "algorithms":
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


def _mode_line(name: str) -> str:
    """``gradsamp: GradSamp (...) [--gradsamp, --gradsamp_period, ...]``"""
    mode = MODES.get(name)
    doc = (mode.__doc__ or "").strip().splitlines()[0] if mode.__doc__ else ""
    flags = ", ".join(f"--{option}" for option in mode.OPTIONS)
    return f"{name}: {doc} [{flags}]"
