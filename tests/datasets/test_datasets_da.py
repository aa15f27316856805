"""Office-31 and VisDA-2017 on trees with their official layouts, built here from tiny images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgsamp.datasets.base import MultiDomainDataset
from dgsamp.datasets.office31 import Office31
from dgsamp.datasets.visda2017 import VisDA2017
from dgsamp.errors import UserError
from dgsamp.registry import DATASETS

# The 31 Office-31 classes as its folders name them (Saenko et al., 2010; tllib's office31.py).
OFFICE31_CLASSES = [
    "back_pack", "bike", "bike_helmet", "bookcase", "bottle", "calculator", "desk_chair",
    "desk_lamp", "desktop_computer", "file_cabinet", "headphones", "keyboard",
    "laptop_computer", "letter_tray", "mobile_phone", "monitor", "mouse", "mug",
    "paper_notebook", "pen", "phone", "printer", "projector", "punchers", "ring_binder",
    "ruler", "scissors", "speaker", "stapler", "tape_dispenser", "trash_can",
]
# The 12 VisDA-2017 classification classes (Peng et al., 2017).
VISDA_CLASSES = [
    "aeroplane", "bicycle", "bus", "car", "horse", "knife", "motorcycle", "person", "plant",
    "skateboard", "train", "truck",
]


def write_image(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (5, 4, 3), dtype=np.uint8), "RGB").save(path)


def build_tree(class_root, domains, classes, extra: dict[tuple[str, str], int]) -> None:
    """One image per class folder of every domain, plus ``extra[(domain, class)]`` more."""
    seed = 0
    for domain in domains:
        for class_name in classes:
            for k in range(1 + extra.get((domain, class_name), 0)):
                suffix = ".png" if k % 2 else ".jpg"
                write_image(class_root(domain) / class_name / f"frame_{k:04d}{suffix}", seed)
                seed += 1


@pytest.fixture(scope="module")
def office31_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    build_tree(
        lambda domain: root / "office31" / domain / "images", Office31.ENVIRONMENTS, OFFICE31_CLASSES,
        {("amazon", "bike"): 2, ("webcam", "trash_can"): 1, ("dslr", "back_pack"): 3},
    )
    return root


@pytest.fixture(scope="module")
def visda_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    build_tree(
        lambda domain: root / "visda2017" / domain, VisDA2017.ENVIRONMENTS, VISDA_CLASSES,
        {("train", "truck"): 2, ("validation", "aeroplane"): 1},
    )
    (root / "visda2017" / "train" / "image_list.txt").write_text("aeroplane/x.png 0\n")  # as shipped
    return root


def test_office31_reads_the_official_layout(office31_root):
    dataset = DATASETS.get("Office31")(office31_root)
    assert isinstance(dataset, Office31)
    assert dataset.environments == ["amazon", "dslr", "webcam"]
    assert Office31.ENVIRONMENT_SHORT_NAMES == ["A", "D", "W"]
    assert dataset.classes == OFFICE31_CLASSES and dataset.num_classes == 31
    assert [len(domain) for domain in dataset.datasets] == [31 + 2, 31 + 3, 31 + 1]
    amazon = dataset[0]
    # sorted by class then file: back_pack (label 0) is item 0, bike's three images are 1..3
    assert amazon.labels[:5] == [0, 1, 1, 1, 2]
    path, label = amazon.samples[2]
    assert path == office31_root / "office31" / "amazon" / "images" / "bike" / "frame_0001.png"
    image, item_label = amazon[2]
    assert image.mode == "RGB" and image.size == (4, 5) and item_label == label == 1
    webcam = dataset[2]
    assert webcam.labels[-2:] == [30, 30] and webcam.samples[-1][0].parent.name == "trash_can"
    assert dataset[1].labels[:4] == [0, 0, 0, 0]
    assert Office31.ACCURACY == "overall" == MultiDomainDataset.ACCURACY
    assert Office31.DEFAULT_BACKBONE == "resnet50"
    assert (Office31.N_STEPS, Office31.CHECKPOINT_FREQ) == (5001, 300)


def test_visda2017_reads_the_classification_split(visda_root):
    dataset = DATASETS.get("VisDA2017")(visda_root)
    assert isinstance(dataset, VisDA2017)
    assert dataset.environments == ["train", "validation"]
    assert VisDA2017.ENVIRONMENT_SHORT_NAMES == ["Synthetic", "Real"]
    assert dataset.classes == VISDA_CLASSES and dataset.num_classes == 12
    assert [len(domain) for domain in dataset.datasets] == [12 + 2, 12 + 1]
    assert dataset[0].labels == [*range(11), 11, 11, 11]
    assert dataset[1].labels == [0, 0, *range(1, 12)]
    image, label = dataset[1][1]
    assert image.mode == "RGB" and label == 0
    assert VisDA2017.ACCURACY == "mean_per_class"
    assert VisDA2017.DEFAULT_BACKBONE == "resnet101"


def one_line_error(cls, root) -> str:
    with pytest.raises(UserError) as caught:
        cls(root)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("cls", [Office31, VisDA2017])
def test_missing_tree_says_where_it_looked_and_how_to_get_it(cls, tmp_path):
    name = DATASETS.get(cls.__name__).__name__
    message = one_line_error(cls, tmp_path)
    expected = tmp_path / cls.DATASET_DIR / cls.ENVIRONMENTS[0] / cls.DOMAIN_SUBDIR
    assert str(expected) in message
    assert f"dgsamp data download {name} --data_dir DIR" in message
    message = one_line_error(cls, tmp_path / "absent")
    assert str(tmp_path / "absent") in message and "dgsamp data download" in message
    assert "--data_dir" in one_line_error(cls, None)


def test_office31_without_the_images_level_names_the_missing_folder(tmp_path):
    # a tree flattened to <domain>/<class>/ (DomainBed-style) is not Office-31's layout
    build_tree(lambda domain: tmp_path / "office31" / domain, Office31.ENVIRONMENTS, OFFICE31_CLASSES[:2], {})
    message = one_line_error(Office31, tmp_path)
    assert str(tmp_path / "office31" / "amazon" / "images") in message


def test_visda2017_with_a_missing_domain_names_it(tmp_path):
    build_tree(lambda domain: tmp_path / "visda2017" / domain, ["train"], VISDA_CLASSES, {})
    message = one_line_error(VisDA2017, tmp_path)
    assert str(tmp_path / "visda2017" / "validation") in message
    assert "dgsamp data download VisDA2017" in message


def test_office31_with_different_classes_per_domain_is_refused(tmp_path):
    build_tree(
        lambda domain: tmp_path / "office31" / domain / "images", Office31.ENVIRONMENTS,
        OFFICE31_CLASSES, {},
    )
    extra = tmp_path / "office31" / "webcam" / "images" / "zebra"
    write_image(extra / "a.jpg", 0)
    message = one_line_error(Office31, tmp_path)
    assert "zebra" in message and "webcam" in message
