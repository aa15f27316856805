"""Atomic extraction: unpack into a hidden sibling folder, fix the layout, rename into place.

Everything happens in ``<data_dir>/.<target>.partial-XXXX``: each archive is unpacked into
its own ``unpack-<i>`` folder, the folder named by ``Archive.root`` is moved to
``<staging>/<target>/<Archive.dest>``, the dataset's finishing step runs, and only then does
one ``os.replace`` put ``<target>`` in ``<data_dir>``. An interrupted or failed run leaves at
most the hidden staging folder (removed on the way out), never a half tree under the name the
loaders read.

Finishing steps (DomainBed ``domainbed/scripts/download.py`` @ b93c22a):

- ``terra_incognita``: from the CCT20 annotations (five JSON files), every image of locations
  38, 43, 46 and 100 goes to ``location_<id>/<category>/<file>`` for each of its annotations
  whose category is one of the ten DomainBed keeps.
- ``domain_net_duplicates``: the files named in DomainBed's ``domain_net_duplicates.txt``
  (paths relative to ``domain_net``) are removed.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from dgsamp.downloads.sources import Archive, DatasetSource
from dgsamp.errors import UserError

TERRA_LOCATIONS = ("38", "43", "46", "100")
TERRA_CATEGORIES = ("bird", "bobcat", "cat", "coyote", "dog", "empty", "opossum", "rabbit", "raccoon", "squirrel")
TERRA_ANNOTATION_FILES = (
    "cis_test_annotations.json", "cis_val_annotations.json", "train_annotations.json",
    "trans_test_annotations.json", "trans_val_annotations.json",
)


def install(source: DatasetSource, files: list[Path], data_dir: Path) -> Path:
    """Build ``<data_dir>/<source.target>`` from the downloaded ``files`` (one per archive)."""
    final = data_dir / source.target
    staging = Path(tempfile.mkdtemp(prefix=f".{source.target}.partial-", dir=data_dir))
    try:
        tree = staging / source.target
        unpacked: dict[str, Path] = {}
        for index, (archive, path) in enumerate(zip(source.archives, files)):
            unpack_dir = staging / f"unpack-{index}"
            unpack(archive, path, unpack_dir)
            unpacked[archive.file_name] = unpack_dir
            if archive.dest is not None:
                _place(archive, unpack_dir / archive.root, tree / archive.dest if archive.dest else tree)
        if source.finish is not None:
            FINISHING_STEPS[source.finish](unpacked, tree)
        if not tree.is_dir():
            raise UserError(f"the archives of {source.name} did not produce {source.target}/; check them or use --mirror")
        os.replace(tree, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def unpack(archive: Archive, path: Path, into: Path) -> None:
    """Unpack a zip or tar (any compression) into ``into``; a plain file is copied there.

    A damaged or truncated archive is deleted and reported as a UserError (the next run
    downloads it again). Members that would land outside ``into`` are refused.
    """
    into.mkdir(parents=True)
    try:
        if archive.kind == "zip":
            with zipfile.ZipFile(path) as handle:
                for name in handle.namelist():
                    _check_member(name, path)
                handle.extractall(into)
        elif archive.kind == "tar":
            with tarfile.open(path, "r:*") as handle:
                if hasattr(tarfile, "data_filter"):
                    handle.extractall(into, filter="data")
                else:  # Python without extraction filters (< 3.10.12 / 3.11.4)
                    for member in handle.getmembers():
                        _check_member(member.name, path)
                    handle.extractall(into)
        else:
            shutil.copyfile(path, into / archive.file_name)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        path.unlink(missing_ok=True)
        raise UserError(
            f"{path.name} is damaged or truncated ({type(error).__name__}: {error}); it was deleted: "
            "run the command again to download it afresh"
        ) from error


def _check_member(name: str, archive_path: Path) -> None:
    member = PurePosixPath(name)
    if member.is_absolute() or ".." in member.parts:
        raise UserError(f"{archive_path.name} holds a file outside its folder ({name}); refusing to unpack it")


def _place(archive: Archive, source: Path, destination: Path) -> None:
    """Move what ``archive.root`` names to ``destination``."""
    if not source.exists():
        raise UserError(
            f"{archive.file_name} has no '{archive.root}' inside; the host may have changed the "
            "archive: check it, or fetch the original with --mirror"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, destination)


def finish_terra_incognita(unpacked: dict[str, Path], tree: Path) -> None:
    """DomainBed's TerraIncognita: ``location_<id>/<category>/<image>`` from the CCT20 annotations."""
    images = unpacked["eccv_18_all_images_sm.tar.gz"] / "eccv_18_all_images_sm"
    annotation_dir = unpacked["eccv_18_annotations.tar.gz"] / "eccv_18_annotation_files"
    merged: dict[str, list] = defaultdict(list)
    for name in TERRA_ANNOTATION_FILES:
        path = annotation_dir / name
        if not path.is_file():
            raise UserError(f"eccv_18_annotations.tar.gz has no {name}; the host may have changed the archive")
        for key, value in json.loads(path.read_text()).items():
            if isinstance(value, list):
                merged[key].extend(value)
    category_names = {category["id"]: category["name"] for category in merged["categories"]}
    categories_of: dict[object, list[str]] = defaultdict(list)
    for annotation in merged["annotations"]:
        categories_of[annotation["image_id"]].append(category_names[annotation["category_id"]])
    tree.mkdir(parents=True, exist_ok=True)
    for image in merged["images"]:
        location = str(image["location"])
        if location not in TERRA_LOCATIONS:
            continue
        for category in categories_of[image["id"]]:
            if category not in TERRA_CATEGORIES:
                continue
            folder = tree / f"location_{location}" / category
            folder.mkdir(parents=True, exist_ok=True)
            destination = folder / image["file_name"]
            if not destination.exists():
                shutil.copyfile(images / image["file_name"], destination)


def finish_domain_net(unpacked: dict[str, Path], tree: Path) -> None:
    """Remove the duplicates DomainBed lists (one path per line, relative to ``domain_net``)."""
    listing = unpacked["domain_net_duplicates.txt"] / "domain_net_duplicates.txt"
    for line in listing.read_text().splitlines():
        if line.strip():
            (tree / line.strip()).unlink(missing_ok=True)


FINISHING_STEPS: dict[str, Callable[[dict[str, Path], Path], None]] = {
    "terra_incognita": finish_terra_incognita,
    "domain_net_duplicates": finish_domain_net,
}
