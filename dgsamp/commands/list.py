"""``dgsamp list [algorithms|datasets|backbones]``: what the registries hold."""

from __future__ import annotations

import argparse

from dgsamp.registry import ALGORITHMS, BACKBONES, DATASETS


def register(subparsers) -> None:
    parser = subparsers.add_parser("list", help="list registered algorithms, datasets or backbones")
    parser.add_argument("what", nargs="?", choices=("algorithms", "datasets", "backbones"), default=None)
    parser.add_argument("--filter", default="*", help="backbones: a timm wildcard, e.g. '*resnet*'")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                        help="import a file that registers more entries first (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sections = [args.what] if args.what else ["algorithms", "datasets", "backbones"]
    for section in sections:
        if len(sections) > 1:
            print(f"{section}:")
        if section == "algorithms":
            names = ALGORITHMS.names()
        elif section == "datasets":
            names = [f"{name} ({', '.join(DATASETS.get(name).ENVIRONMENTS)})" for name in DATASETS.names()]
        else:
            import timm

            names = [*BACKBONES.names(), *timm.list_models(args.filter)]
        for name in names:
            print(f"  {name}" if len(sections) > 1 else name)
    return 0
