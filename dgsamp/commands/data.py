"""``dgsamp data download NAME... --data_dir DIR`` and ``dgsamp data verify NAME --data_dir DIR``.

``download`` fetches the archives listed in ``dgsamp.downloads.sources`` (with resume,
checksums where published, ``--mirror``/``DGSAMP_MIRROR`` fallback) and unpacks them atomically
into the layout the loaders read. ``verify`` compares a tree with the published image counts:
exit 0 when everything matches, 1 when something is missing or extra, 2 on bad input.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from dgsamp.downloads.fetch import MIRROR_ENV
from dgsamp.downloads.sources import SOURCES


def register(subparsers, argv: Sequence[str] = ()) -> None:
    parser = subparsers.add_parser("data", help="download datasets and verify them against published counts")
    actions = parser.add_subparsers(dest="data_command", required=True, parser_class=type(parser))
    known = ", ".join(SOURCES)

    fetch = actions.add_parser("download", help=f"download and unpack datasets ({known})")
    fetch.add_argument("names", nargs="+", metavar="NAME", help=f"datasets to download: {known}")
    fetch.add_argument("--data_dir", required=True, type=Path, help="folder that receives <DATASET_DIR>/...")
    fetch.add_argument("--mirror", default=None, metavar="URL",
                       help=f"a host serving every archive as URL/<archive file name>, tried when the "
                            f"primary host fails (default: ${MIRROR_ENV})")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar, no messages (errors only)")
    fetch.add_argument("--keep_archives", action="store_true", help="keep the downloaded archives after unpacking")
    fetch.set_defaults(func=run_download)

    check = actions.add_parser("verify", help="compare a dataset tree with the published image counts")
    check.add_argument("name", metavar="NAME", help=f"dataset to check: {known}")
    check.add_argument("--data_dir", required=True, type=Path, help="the folder given to download")
    check.set_defaults(func=run_verify)

    for sub in (fetch, check):
        sub.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                         help="import a file first (it may register more download sources)")


def run_download(args: argparse.Namespace) -> int:
    from dgsamp.downloads.download import download

    download(args.names, args.data_dir, mirror=args.mirror, quiet=args.quiet, keep_archives=args.keep_archives)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from dgsamp.downloads.verify import verify

    report = verify(args.name, args.data_dir)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1
