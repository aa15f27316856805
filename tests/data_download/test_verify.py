"""``dgsamp data verify``: the real PACS matches its published counts; a tree the test builds
with a class folder removed and a file added is reported, exit 1; bad input exits 2."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dgsamp.cli import main
from dgsamp.downloads import counts
from dgsamp.downloads.counts import KnownCounts
from tests.helpers import shared_data_dir


def test_the_real_pacs_matches_its_counts(capsys):
    pacs128 = shared_data_dir("pacs128")
    assert main(["data", "verify", "PACS", "--data_dir", str(pacs128)]) == 0
    # 9,991 images: Li et al. (ICCV 2017) and shared/data/README.md
    assert "PACS: all 9,991 images present" in capsys.readouterr().out


def copy_of_pacs_names(source: Path, into: Path) -> None:
    """The real PACS tree with the same file names, each file empty (verify counts names only)."""
    for folder, _, files in os.walk(source):
        target = into / Path(folder).relative_to(source)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            (target / name).touch()


def test_a_missing_class_and_an_extra_file_are_named(tmp_path, capsys):
    real = shared_data_dir("pacs128", "PACS")
    copy_of_pacs_names(real, tmp_path / "PACS")
    house_sketches = len(os.listdir(real / "sketch" / "house"))  # counted here, not by the code under test
    dog_photos = len(os.listdir(real / "photo" / "dog"))
    shutil.rmtree(tmp_path / "PACS" / "sketch" / "house")
    (tmp_path / "PACS" / "photo" / "dog" / "stray.png").touch()
    (tmp_path / "PACS" / "photo" / "dog" / "notes.txt").touch()  # not an image: ignored

    assert main(["data", "verify", "PACS", "--data_dir", str(tmp_path)]) == 1

    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        f"photo/dog: expected {dog_photos:,}, found {dog_photos + 1:,} (1 extra)",
        f"sketch/house: missing (expected {house_sketches:,})",
    ]
    assert out[2] == (f"PACS: 9,991 images expected, {9991 - house_sketches + 1:,} found in "
                      f"{tmp_path / 'PACS'} (per class); 2 differences")


def test_totals_only_domains_and_stray_class_folders(tmp_path, monkeypatch, capsys):
    # A stand-in table entry: 3 + 2 images per class in domain "a", 4 in total in domain "b".
    monkeypatch.setitem(counts.KNOWN_COUNTS, "Office31", KnownCounts(
        "office31", {"a": 5, "b": 4}, {"a": {"x": 3, "y": 2}}, domain_subdir="images", note="a note"))
    for domain, class_name, n in [("a", "x", 3), ("a", "y", 2), ("a", "z", 1), ("b", "x", 2), ("b", "y", 1)]:
        folder = tmp_path / "office31" / domain / "images" / class_name
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"{i}.jpg").touch()

    assert main(["data", "verify", "Office31", "--data_dir", str(tmp_path)]) == 1

    assert capsys.readouterr().out.splitlines() == [
        "a/images/z: not expected (1 extra)",
        "b/images: expected 4, found 3 (1 missing)",
        f"Office31: 9 images expected, 9 found in {tmp_path / 'office31'} "
        "(per class for a; totals only for the rest); 2 differences",
        "note: a note",
    ]


def test_mnist_files_are_checked_by_their_headers(tmp_path, capsys):
    raw = shared_data_dir("MNIST", "raw")
    (tmp_path / "MNIST").mkdir()
    shutil.copytree(raw, tmp_path / "MNIST" / "raw")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()

    assert main(["data", "verify", "ColoredMNIST", "--data_dir", str(tmp_path)]) == 1

    assert "t10k-labels-idx1-ubyte[.gz]: missing (expected 10,000)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["Nope"], "unknown dataset 'Nope'; known: PACS"),
    (["VLCS"], "not found; download it with `dgsamp data download VLCS"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    assert main(["data", "verify", *argv, "--data_dir", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_a_missing_data_dir_exits_2(tmp_path, capsys):
    assert main(["data", "verify", "PACS", "--data_dir", str(tmp_path / "absent")]) == 2
    assert "is not a folder" in capsys.readouterr().err
