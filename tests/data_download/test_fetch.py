"""``dgsamp data download`` against a real HTTP server on 127.0.0.1: resume, checksums,
truncated archives, 404s with and without a mirror, disk space, user mistakes."""

from __future__ import annotations

import hashlib
import shutil

from dgsamp.cli import main
from tests.data_download.archive_server import Misbehaviour
from tests.data_download.archives import PACS_DOMAINS, pacs_zip


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_dropped_connection_is_resumed_with_range(server, point_at, tmp_path, capsys):
    archive = pacs_zip()
    cut = len(archive) // 3
    server.files["/PACS.zip"] = archive
    server.misbehaviour["/PACS.zip"] = Misbehaviour(drop_after=cut)
    point_at("PACS", {"PACS.zip": "/PACS.zip"}, checksum=f"sha256:{sha256(archive)}")

    assert main(["data", "download", "PACS", "--data_dir", str(tmp_path), "--keep_archives"]) == 0

    first, second = server.requests_for("/PACS.zip")
    assert "Range" not in first
    assert second["Range"] == f"bytes={cut}-"
    assert sha256((tmp_path / "PACS.zip").read_bytes()) == sha256(archive)
    assert not (tmp_path / "PACS.zip.part").exists()
    assert sorted(path.name for path in (tmp_path / "PACS").iterdir()) == PACS_DOMAINS
    assert len(list((tmp_path / "PACS" / "sketch" / "person").glob("*.jpg"))) == 2
    assert "PACS.zip: sha256 checked" in capsys.readouterr().out


def test_a_server_that_ignores_range_restarts_the_file(server, point_at, tmp_path):
    archive = pacs_zip()
    server.files["/PACS.zip"] = archive
    server.misbehaviour["/PACS.zip"] = Misbehaviour(ignore_range=True)
    point_at("PACS", {"PACS.zip": "/PACS.zip"}, checksum=f"sha256:{sha256(archive)}")
    (tmp_path / "PACS.zip.part").write_bytes(b"x" * 100)  # not a prefix of the archive

    assert main(["data", "download", "PACS", "--data_dir", str(tmp_path), "--keep_archives", "--quiet"]) == 0

    (request,) = server.requests_for("/PACS.zip")
    assert request["Range"] == "bytes=100-"
    assert sha256((tmp_path / "PACS.zip").read_bytes()) == sha256(archive)


def test_a_wrong_checksum_deletes_the_part_and_extracts_nothing(server, point_at, tmp_path, capsys):
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for name in names:
        server.files[f"/mnist/{name}"] = b"not the MNIST file"
    point_at("RotatedMNIST", {name: f"/mnist/{name}" for name in names})  # torchvision's md5s stay

    assert main(["data", "download", "RotatedMNIST", "--data_dir", str(tmp_path)]) == 2

    line = one_error_line(capsys)
    assert "md5 of train-images-idx3-ubyte.gz is" in line
    assert "expected f68b3c2dcbeaaa9fbdd348bbdeb94873" in line  # torchvision/datasets/mnist.py
    assert list(tmp_path.iterdir()) == []  # no .part, no MNIST/, no staging folder


def test_a_truncated_archive_says_so_in_one_line(server, point_at, tmp_path, capsys):
    archive = pacs_zip()
    server.files["/PACS.zip"] = archive
    server.misbehaviour["/PACS.zip"] = Misbehaviour(truncate_to=len(archive) // 2)
    point_at("PACS", {"PACS.zip": "/PACS.zip"})

    assert main(["data", "download", "PACS", "--data_dir", str(tmp_path)]) == 2

    captured = capsys.readouterr()
    assert "PACS.zip: no published checksum; not checked" in captured.out
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and "PACS.zip is damaged or truncated" in errors[0]
    assert list(tmp_path.iterdir()) == []  # the archive deleted, no PACS/, no staging folder


def test_a_404_without_a_mirror_names_the_url_and_suggests_one(server, point_at, tmp_path, capsys):
    point_at("PACS", {"PACS.zip": "/gone/PACS.zip"})

    assert main(["data", "download", "PACS", "--data_dir", str(tmp_path)]) == 2

    line = one_error_line(capsys)
    assert f"{server.url('/gone/PACS.zip')} answered HTTP 404" in line
    assert "--mirror" in line
    assert list(tmp_path.iterdir()) == []


def test_a_404_falls_back_to_the_mirror_from_the_environment(server, point_at, tmp_path, monkeypatch):
    archive = pacs_zip()
    server.files["/mirror/PACS.zip"] = archive
    point_at("PACS", {"PACS.zip": "/gone/PACS.zip"})
    monkeypatch.setenv("DGSAMP_MIRROR", server.url("/mirror/"))

    assert main(["data", "download", "PACS", "--data_dir", str(tmp_path), "--quiet"]) == 0

    assert [path for path, _ in server.requests] == ["/gone/PACS.zip", "/mirror/PACS.zip"]
    assert (tmp_path / "PACS" / "art_painting" / "dog" / "000.jpg").is_file()
    assert not (tmp_path / "PACS.zip").exists()  # archives are deleted after unpacking


def test_a_mirror_that_also_fails_names_both(server, point_at, tmp_path, capsys):
    point_at("PACS", {"PACS.zip": "/gone/PACS.zip"})

    assert main(["data", "download", "PACS", "--data_dir", str(tmp_path),
                 "--mirror", server.url("/empty")]) == 2

    line = one_error_line(capsys)
    assert server.url("/gone/PACS.zip") in line and server.url("/empty/PACS.zip") in line


def test_not_enough_disk_space_refuses_before_downloading(server, point_at, tmp_path, monkeypatch, capsys):
    # shutil.disk_usage is mocked: a full disk cannot be made on this machine.
    server.files["/PACS.zip"] = pacs_zip()
    point_at("PACS", {"PACS.zip": "/PACS.zip"})
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12 - 1000, 1000))

    assert main(["data", "download", "PACS", "--data_dir", str(tmp_path)]) == 2

    assert "not enough free space" in one_error_line(capsys)
    assert server.requests == []


def test_user_mistakes_are_one_line_exit_2(tmp_path, capsys):
    assert main(["data", "download", "PAKS", "--data_dir", str(tmp_path)]) == 2
    line = one_error_line(capsys)
    assert "unknown dataset 'PAKS'" in line and "PACS, OfficeHome, VLCS" in line

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert main(["data", "download", "PACS", "--data_dir", str(not_a_folder)]) == 2
    assert "is not a folder" in one_error_line(capsys)

    assert main(["data", "download", "PACS", "--data_dir", str(tmp_path), "--mirror", "ftp://x"]) == 2
    assert "--mirror must be" in one_error_line(capsys)


def test_an_existing_tree_is_left_alone(server, point_at, tmp_path, capsys):
    (tmp_path / "PACS").mkdir()
    point_at("PACS", {"PACS.zip": "/PACS.zip"})

    assert main(["data", "download", "PACS", "--data_dir", str(tmp_path)]) == 0

    assert "already exists" in capsys.readouterr().out
    assert server.requests == []
