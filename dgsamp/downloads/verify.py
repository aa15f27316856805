"""Compare a dataset tree with the published image counts (``counts.KNOWN_COUNTS``).

For a domain with per-class counts every class folder is compared (a missing folder counts 0
images; a folder that is not a class of the dataset is reported with its size); for a domain
with a total only, the images of all its class folders are summed. Images are the files with
an image extension (``dgsamp.datasets.images.IMAGE_EXTENSIONS``); hidden files, other files
(VisDA's ``image_list.txt``) and folders beside the domains are ignored.

RotatedMNIST and ColoredMNIST check ``MNIST/raw``: the four idx files (gzipped or not) and the
number of items each header declares (60,000 train, 10,000 test).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

from dgsamp.datasets.images import IMAGE_EXTENSIONS
from dgsamp.downloads.counts import KNOWN_COUNTS, KnownCounts
from dgsamp.downloads.sources import resolve_name
from dgsamp.errors import UserError

MNIST_ITEMS = {
    "train-images-idx3-ubyte": 60_000, "train-labels-idx1-ubyte": 60_000,
    "t10k-images-idx3-ubyte": 10_000, "t10k-labels-idx1-ubyte": 10_000,
}
MNIST_NAMES = ("RotatedMNIST", "ColoredMNIST")


@dataclass(frozen=True)
class Difference:
    """One place where the tree and the counts disagree; ``found`` is None for a missing folder."""

    where: str
    expected: int
    found: int | None

    def describe(self) -> str:
        if self.found is None:
            return f"{self.where}: missing (expected {self.expected:,})"
        if self.expected == 0:
            return f"{self.where}: not expected ({self.found:,} extra)"
        gap = self.found - self.expected
        change = f"{-gap:,} missing" if gap < 0 else f"{gap:,} extra"
        return f"{self.where}: expected {self.expected:,}, found {self.found:,} ({change})"


@dataclass
class VerifyReport:
    name: str
    folder: Path
    expected: int
    found: int = 0
    differences: list[Difference] = field(default_factory=list)
    scope: str = ""
    note: str = ""
    unit: str = "images"

    @property
    def ok(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        lines = [difference.describe() for difference in self.differences]
        if self.ok:
            lines.append(f"{self.name}: all {self.expected:,} {self.unit} present in {self.folder} ({self.scope})")
        else:
            lines.append(
                f"{self.name}: {self.expected:,} {self.unit} expected, {self.found:,} found in {self.folder} ({self.scope}); "
                f"{len(self.differences)} difference{'s' if len(self.differences) > 1 else ''}"
            )
            if self.note:
                lines.append(f"note: {self.note}")
        return lines


def verify(name: str, data_dir: Path) -> VerifyReport:
    """Check ``<data_dir>/<target>`` of dataset ``name``; bad input is a UserError."""
    name = resolve_name(name, {**KNOWN_COUNTS, **dict.fromkeys(MNIST_NAMES)})
    if not data_dir.is_dir():
        raise UserError(f"--data_dir {data_dir} is not a folder")
    if name in MNIST_NAMES:
        return _verify_mnist(name, data_dir / "MNIST" / "raw")
    known = KNOWN_COUNTS[name]
    folder = data_dir / known.target
    if not folder.is_dir():
        raise UserError(f"{folder} not found; download it with `dgsamp data download {name} --data_dir {data_dir}`")
    return _verify_tree(name, folder, known)


def count_images(folder: Path) -> int:
    """Image files directly inside ``folder`` (hidden files and other extensions skipped)."""
    return sum(
        1 for entry in os.scandir(folder)
        if entry.is_file() and not entry.name.startswith(".")
        and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
    )


def _class_folders(folder: Path) -> dict[str, int]:
    return {
        entry.name: count_images(Path(entry.path))
        for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith(".")
    }


def _verify_tree(name: str, folder: Path, known: KnownCounts) -> VerifyReport:
    per_class = [domain for domain in known.domains if domain in known.classes]
    scope = ("per class" if len(per_class) == len(known.domains)
             else "per-domain totals only" if not per_class
             else f"per class for {', '.join(per_class)}; totals only for the rest")
    report = VerifyReport(name, folder, sum(known.domains.values()), scope=scope, note=known.note)
    for domain, expected_total in known.domains.items():
        domain_dir = folder / domain / known.domain_subdir
        where = f"{domain}/{known.domain_subdir}".rstrip("/")
        if not domain_dir.is_dir():
            report.differences.append(Difference(where, expected_total, None))
            continue
        found = _class_folders(domain_dir)
        report.found += sum(found.values())
        if domain not in known.classes:
            if sum(found.values()) != expected_total:
                report.differences.append(Difference(where, expected_total, sum(found.values())))
            continue
        expected = known.classes[domain]
        for class_name in sorted(set(expected) | set(found)):
            if class_name not in found:
                report.differences.append(Difference(f"{where}/{class_name}", expected[class_name], None))
            elif found[class_name] != expected.get(class_name, 0):
                report.differences.append(
                    Difference(f"{where}/{class_name}", expected.get(class_name, 0), found[class_name])
                )
    return report


def _verify_mnist(name: str, raw: Path) -> VerifyReport:
    report = VerifyReport(name, raw, sum(MNIST_ITEMS.values()), scope="per idx file", unit="items")
    for stem, expected in MNIST_ITEMS.items():
        path = next((raw / f"{stem}{suffix}" for suffix in (".gz", "") if (raw / f"{stem}{suffix}").is_file()), None)
        if path is None:
            report.differences.append(Difference(f"{stem}[.gz]", expected, None))
            continue
        found = _idx_items(path)
        report.found += found
        if found != expected:
            report.differences.append(Difference(path.name, expected, found))
    return report


def _idx_items(path: Path) -> int:
    """The item count in an idx header (bytes 4-8, big-endian); 0 for an unreadable file."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            header = handle.read(8)
    except (OSError, EOFError):
        return 0
    return int.from_bytes(header[4:8], "big") if len(header) == 8 else 0
