"""Image-folder datasets on real PACS files and on DomainBed-layout trees built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgsamp.datasets.images import (
    PACS,
    VLCS,
    DomainNet,
    OfficeHome,
    PACSMini,
    TerraIncognita,
)
from dgsamp.errors import UserError
from dgsamp.registry import DATASETS, create_dataset
from tests.helpers import shared_data_dir

PACS_CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]

# The 65 Office-Home classes (Venkateswara et al., CVPR 2017), as named in its folders.
OFFICE_HOME_CLASSES = [
    "Alarm_Clock", "Backpack", "Batteries", "Bed", "Bike", "Bottle", "Bucket", "Calculator",
    "Calendar", "Candles", "Chair", "Clipboards", "Computer", "Couch", "Curtains", "Desk_Lamp",
    "Drill", "Eraser", "Exit_Sign", "Fan", "File_Cabinet", "Flipflops", "Flowers", "Folder",
    "Fork", "Glasses", "Hammer", "Helmet", "Kettle", "Keyboard", "Knives", "Lamp_Shade",
    "Laptop", "Marker", "Monitor", "Mop", "Mouse", "Mug", "Notebook", "Oven", "Pan",
    "Paper_Clip", "Pen", "Pencil", "Postit_Notes", "Printer", "Push_Pin", "Radio",
    "Refrigerator", "Ruler", "Scissors", "Screwdriver", "Shelf", "Sink", "Sneakers", "Soda",
    "Speaker", "Spoon", "TV", "Table", "Telephone", "ToothBrush", "Toys", "Trash_Can", "Webcam",
]

# (mode, file name) pairs: each PIL mode saved in a format that stores it natively.
MODE_FILES = [("L", "gray.png"), ("RGBA", "alpha.PNG"), ("CMYK", "cmyk.jpg"), ("P", "palette.gif")]


def write_image(path: Path, mode: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8), "RGB")
    image = rgb.quantize(16) if mode == "P" else rgb.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def build_tree(dataset_dir: Path, domains: list[str], classes: list[str], per_class: int = 1) -> None:
    seed = 0
    for domain in domains:
        for class_name in classes:
            for k in range(per_class):
                mode, name = MODE_FILES[seed % len(MODE_FILES)]
                write_image(dataset_dir / domain / class_name / f"{k}_{name}", mode, seed)
                seed += 1


@pytest.fixture(scope="module")
def pacs_sample() -> Path:
    """``../shared/data/pacs_original_sample``: 70 original PACS images per domain, or skip."""
    return shared_data_dir("pacs_original_sample")


def test_pacs_original_sample_reads_real_jpg_and_png(pacs_sample):
    dataset = PACS(pacs_sample)
    assert dataset.environments == ["art_painting", "cartoon", "photo", "sketch"]
    assert dataset.classes == PACS_CLASSES
    assert [len(domain) for domain in dataset.datasets] == [70, 70, 70, 70]
    assert dataset.input_shape == (3, 224, 224)
    assert dataset.DEFAULT_BACKBONE == "tf_efficientnet_lite0"
    for env_index, suffix in [(2, ".jpg"), (3, ".png")]:
        domain = dataset[env_index]
        path, label = domain.samples[13]
        assert path.suffix == suffix
        image, item_label = domain[13]
        assert image.mode == "RGB" and image.size == (227, 227)
        assert item_label == label == 1  # 10 images per class, sorted: item 13 is an elephant
        assert path.parent.name == "elephant"
        with Image.open(path) as original:
            assert np.array_equal(np.asarray(image), np.asarray(original.convert("RGB")))


def test_pacs128_has_all_9991_images():
    dataset = create_dataset("PACS", shared_data_dir("pacs128"))
    assert [len(domain) for domain in dataset.datasets] == [2048, 2344, 1670, 3929]
    assert sum(len(domain) for domain in dataset.datasets) == 9991
    assert dataset.num_classes == 7
    labels = dataset[0].labels
    assert labels == sorted(labels) and set(labels) == set(range(7))


def test_pacs_mini_is_embedded_and_ignores_root(tmp_path):
    for root in (None, tmp_path / "does-not-exist"):
        dataset = PACSMini(root)
        assert [len(domain) for domain in dataset.datasets] == [175, 175, 175, 175]
        assert dataset.classes == PACS_CLASSES
        for domain in dataset.datasets:
            assert np.bincount(domain.labels).tolist() == [25] * 7
    image, label = dataset[1][0]
    assert image.mode == "RGB" and image.size == (96, 96) and label == 0
    assert create_dataset("PACSMini", None).num_classes == 7


def test_registry_lists_every_image_dataset():
    expected = {
        "PACS": (PACS, "tf_efficientnet_lite0"),
        "PACSMini": (PACSMini, "tf_efficientnet_lite0"),
        "OfficeHome": (OfficeHome, "resnet50"),
        "VLCS": (VLCS, "resnet50"),
        "TerraIncognita": (TerraIncognita, "resnet50"),
        "DomainNet": (DomainNet, "resnet50"),
    }
    for name, (cls, backbone) in expected.items():
        assert DATASETS.get(name) is cls
        assert backbone == cls.DEFAULT_BACKBONE
        assert cls.IS_IMAGE and not cls.SMALL_IMAGES
    assert OfficeHome.ENVIRONMENTS == ["Art", "Clipart", "Product", "Real World"]
    assert len(DomainNet.ENVIRONMENTS) == 6


def test_office_home_tree_with_65_classes_and_mixed_modes(tmp_path):
    assert len(OFFICE_HOME_CLASSES) == 65 == len(set(OFFICE_HOME_CLASSES))
    build_tree(tmp_path / "office_home", OfficeHome.ENVIRONMENTS, OFFICE_HOME_CLASSES)
    (tmp_path / "office_home" / "Art" / "Mug" / "notes.txt").write_text("not an image")
    (tmp_path / "office_home" / "Art" / ".DS_Store").write_bytes(b"\0")
    dataset = create_dataset("OfficeHome", tmp_path)
    assert dataset.num_classes == 65
    assert dataset.classes == sorted(OFFICE_HOME_CLASSES)
    assert [len(domain) for domain in dataset.datasets] == [65] * 4
    assert dataset[3].name == "Real World"
    modes_seen = set()
    for domain in dataset.datasets:
        for index in range(len(domain)):
            path, _label = domain.samples[index]
            image, item_label = domain[index]
            assert image.mode == "RGB" and image.size == (5, 6)
            assert dataset.classes[item_label] == path.parent.name
            with Image.open(path) as original:
                modes_seen.add(original.mode)
    assert modes_seen == {"L", "RGBA", "CMYK", "P"}


@pytest.mark.parametrize("root", [None, "missing-folder"])
def test_missing_root_says_where_and_how(tmp_path, root):
    root = None if root is None else tmp_path / root
    with pytest.raises(UserError, match=r"PACS/art_painting.*domainbed\.scripts\.download"):
        PACS(root)


def test_missing_dataset_folder_names_expected_path(tmp_path):
    with pytest.raises(UserError, match=r"terra_incognita/location_100"):
        TerraIncognita(tmp_path)


def test_missing_domain_folder(tmp_path):
    build_tree(tmp_path / "VLCS", ["Caltech101", "LabelMe", "VOC2007"], ["bird", "car"])
    with pytest.raises(UserError, match=r"domain folder missing: .*VLCS/SUN09"):
        VLCS(tmp_path)


def test_class_folders_differ_between_domains(tmp_path):
    domains = TerraIncognita.ENVIRONMENTS
    build_tree(tmp_path / "terra_incognita", domains, ["bobcat", "coyote"])
    write_image(tmp_path / "terra_incognita" / domains[2] / "opossum" / "a.png", "L", 1)
    with pytest.raises(UserError, match=r"only in 'location_43': \['opossum'\]"):
        TerraIncognita(tmp_path)


def test_empty_class_folder_is_named(tmp_path):
    build_tree(tmp_path / "PACS", PACS.ENVIRONMENTS, PACS_CLASSES)
    empty = tmp_path / "PACS" / "cartoon" / "horse"
    for file in empty.iterdir():
        file.unlink()
    with pytest.raises(UserError, match=r"no images .*PACS/cartoon/horse"):
        PACS(tmp_path)


def test_zero_byte_image_is_caught_at_construction(tmp_path):
    build_tree(tmp_path / "PACS", PACS.ENVIRONMENTS, PACS_CLASSES)
    (tmp_path / "PACS" / "sketch" / "dog" / "broken.png").write_bytes(b"")
    with pytest.raises(UserError, match=r"empty .*sketch/dog/broken\.png"):
        PACS(tmp_path)


def test_corrupt_and_truncated_images_name_the_file_when_loaded(tmp_path, pacs_sample):
    build_tree(tmp_path / "PACS", PACS.ENVIRONMENTS, PACS_CLASSES)
    real = next((pacs_sample / "PACS" / "photo" / "dog").glob("*.jpg")).read_bytes()
    (tmp_path / "PACS" / "photo" / "dog" / "truncated.jpg").write_bytes(real[: len(real) // 3])
    (tmp_path / "PACS" / "photo" / "dog" / "garbage.jpg").write_bytes(b"this is not a jpeg" * 10)
    dataset = PACS(tmp_path)  # non-empty files pass the cheap check
    domain = dataset[2]
    names = [path.name for path, _ in domain.samples]
    for name in ("truncated.jpg", "garbage.jpg"):
        with pytest.raises(UserError, match=rf"cannot read image .*photo/dog/{name}"):
            domain[names.index(name)]
