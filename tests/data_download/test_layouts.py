"""Each archive layout ends in the tree its loader reads: Office-31 and VisDA-2017 through
their dgsamp.datasets loaders, TerraIncognita's location folders built from the CCT20
annotations, DomainNet without DomainBed's duplicates. A real subprocess runs the CLI with
``--mirror`` and a ``--plugin`` that points PACS at a dead local URL."""

from __future__ import annotations

import hashlib
import json

from dgsamp.cli import main
from tests.data_download.archives import jpeg_bytes, pacs_zip, tar_bytes, zip_bytes
from tests.helpers import run_cli


def test_office31_archives_build_the_tree_the_loader_reads(server, point_at, tmp_path):
    from dgsamp.datasets.office31 import Office31

    paths = {}
    for domain in ("amazon", "dslr", "webcam"):  # tllib's <domain>.tgz: <domain>/images/<class>/*.jpg
        members = {f"{domain}/images/{class_name}/frame_{n:04d}.jpg": jpeg_bytes((n, 0, 0))
                   for class_name in ("back_pack", "bike") for n in range(1, 3)}
        server.files[f"/o31/{domain}.tgz"] = tar_bytes(members)
        paths[f"{domain}.tgz"] = f"/o31/{domain}.tgz"
    point_at("Office31", paths)

    assert main(["data", "download", "Office31", "--data_dir", str(tmp_path), "--quiet"]) == 0

    dataset = Office31(tmp_path)
    assert dataset.classes == ["back_pack", "bike"]
    assert [len(domain) for domain in dataset.datasets] == [4, 4, 4]
    assert (tmp_path / "office31" / "dslr" / "images" / "bike" / "frame_0002.jpg").is_file()


def test_visda2017_tars_build_the_tree_the_loader_reads(server, point_at, tmp_path):
    from dgsamp.datasets.visda2017 import VisDA2017

    for split in ("train", "validation"):  # the official tars: <split>/<class>/*, image_list.txt beside
        members = {f"{split}/{class_name}/{class_name}_{n}.jpg": jpeg_bytes((0, n, 0))
                   for class_name in ("aeroplane", "truck") for n in range(3)}
        members[f"{split}/image_list.txt"] = b"aeroplane/aeroplane_0.jpg 0\n"
        server.files[f"/{split}.tar"] = tar_bytes(members, compression="")
    point_at("VisDA2017", {"train.tar": "/train.tar", "validation.tar": "/validation.tar"})

    assert main(["data", "download", "VisDA2017", "--data_dir", str(tmp_path), "--quiet"]) == 0

    dataset = VisDA2017(tmp_path)
    assert dataset.classes == ["aeroplane", "truck"]
    assert [len(domain) for domain in dataset.datasets] == [6, 6]


def test_terra_incognita_is_sorted_into_locations_and_categories(server, point_at, tmp_path):
    images = {f"eccv_18_all_images_sm/{name}.jpg": jpeg_bytes((i * 50, 0, 0))
              for i, name in enumerate(["a", "b", "c", "d"])}
    categories = [{"id": 1, "name": "dog"}, {"id": 2, "name": "car"}, {"id": 3, "name": "cat"}]
    train = {"categories": categories,
             "images": [{"id": "a", "file_name": "a.jpg", "location": 38},
                        {"id": "c", "file_name": "c.jpg", "location": 99}],
             "annotations": [{"image_id": "a", "category_id": 1}, {"image_id": "c", "category_id": 1}]}
    cis_val = {"categories": categories,
               "images": [{"id": "b", "file_name": "b.jpg", "location": 100},
                          {"id": "d", "file_name": "d.jpg", "location": 43}],
               "annotations": [{"image_id": "b", "category_id": 1}, {"image_id": "d", "category_id": 2},
                               {"image_id": "a", "category_id": 3}]}
    empty = {"categories": categories, "images": [], "annotations": []}
    annotations = {f"eccv_18_annotation_files/{name}": json.dumps(content).encode() for name, content in [
        ("train_annotations.json", train), ("cis_val_annotations.json", cis_val),
        ("cis_test_annotations.json", empty), ("trans_test_annotations.json", empty),
        ("trans_val_annotations.json", empty)]}
    server.files["/images.tar.gz"] = tar_bytes(images)
    server.files["/annotations.tar.gz"] = tar_bytes(annotations)
    point_at("TerraIncognita", {"eccv_18_all_images_sm.tar.gz": "/images.tar.gz",
                                "eccv_18_annotations.tar.gz": "/annotations.tar.gz"})

    assert main(["data", "download", "TerraIncognita", "--data_dir", str(tmp_path), "--quiet"]) == 0

    tree = tmp_path / "terra_incognita"
    files = sorted(str(path.relative_to(tree)) for path in tree.rglob("*.jpg"))
    # a: location 38, dog and cat; b: location 100, dog; c: location 99 (not kept); d: car (not kept)
    assert files == ["location_100/dog/b.jpg", "location_38/cat/a.jpg", "location_38/dog/a.jpg"]
    assert (tree / "location_38" / "dog" / "a.jpg").read_bytes() == images["eccv_18_all_images_sm/a.jpg"]


def test_domain_net_drops_domainbeds_duplicates(server, point_at, tmp_path, monkeypatch):
    from dataclasses import replace

    from dgsamp.downloads.sources import SOURCES

    duplicates = b"clipart/cat/2.jpg\nclipart/cat/9.jpg\n"
    server.files["/clipart.zip"] = zip_bytes({f"clipart/cat/{n}.jpg": jpeg_bytes((n, n, n)) for n in (1, 2, 3)})
    server.files["/dups.txt"] = duplicates
    only_clipart = replace(SOURCES["DomainNet"], archives=tuple(
        archive for archive in SOURCES["DomainNet"].archives if archive.file_name in ("clipart.zip", "domain_net_duplicates.txt")))
    monkeypatch.setitem(SOURCES, "DomainNet", only_clipart)
    point_at("DomainNet", {"clipart.zip": "/clipart.zip", "domain_net_duplicates.txt": "/dups.txt"},
             checksum=None)

    assert main(["data", "download", "DomainNet", "--data_dir", str(tmp_path), "--quiet"]) == 0

    assert sorted(path.name for path in (tmp_path / "domain_net" / "clipart" / "cat").iterdir()) == ["1.jpg", "3.jpg"]


def test_the_cli_falls_back_to_the_mirror_in_a_subprocess(server, tmp_path, capsys):
    archive = pacs_zip()
    server.files["/mirror/PACS.zip"] = archive
    plugin = tmp_path / "dead_pacs_host.py"
    plugin.write_text(
        "from dataclasses import replace\n"
        "from dgsamp.downloads.sources import SOURCES, register_source\n"
        "pacs = SOURCES['PACS']\n"
        f"register_source('PACS', replace(pacs, archives=tuple(replace(a, url={server.url('/dead/PACS.zip')!r})"
        " for a in pacs.archives)))\n"
    )
    data_dir = tmp_path / "data"

    done = run_cli("data", "download", "PACS", "--data_dir", str(data_dir), "--keep_archives",
                   "--mirror", server.url("/mirror"), "--plugin", str(plugin), timeout=120)

    assert done.returncode == 0, done.stderr
    assert [path for path, _ in server.requests] == ["/dead/PACS.zip", "/mirror/PACS.zip"]
    assert "HTTP 404" in done.stdout and "trying the mirror" in done.stdout
    assert hashlib.sha256((data_dir / "PACS.zip").read_bytes()).hexdigest() == hashlib.sha256(archive).hexdigest()

    assert main(["data", "verify", "PACS", "--data_dir", str(data_dir)]) == 1  # 2 images per class
    # 379 dog paintings in the complete PACS (counted in shared/data/pacs128/PACS/art_painting/dog)
    assert "art_painting/dog: expected 379, found 2 (377 missing)" in capsys.readouterr().out
