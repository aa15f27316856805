"""Image-folder datasets in DomainBed's layout: ``<root>/<DATASET_DIR>/<domain>/<class>/<image>``.

Every domain is an :class:`ImageFolderDomain` whose items are ``(PIL.Image in RGB, int label)``;
greyscale, RGBA, CMYK and palette files are converted to RGB when loaded (alpha is dropped,
as torchvision's ImageFolder loader does). Classes are the sorted class-folder names and must
be the same in every domain, so label ``k`` means the same class everywhere.

Registered: ``PACS``, ``OfficeHome``, ``VLCS``, ``TerraIncognita``, ``DomainNet`` and
``PACSMini`` (700 real PACS images shipped inside the package; its root is ignored).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

import dgsamp
from dgsamp.datasets.base import MultiDomainDataset
from dgsamp.errors import UserError
from dgsamp.registry import register_dataset

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

EMBEDDED_ROOT = Path(dgsamp.__file__).resolve().parent / "embedded" / "pacs_mini"

DOMAINBED_DOWNLOAD = "DomainBed's `python -m domainbed.scripts.download --data_dir <root>`"


def load_rgb(path: Path) -> Image.Image:
    """Decode one image file fully and return it in RGB; a broken file is a UserError."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise UserError(
            f"cannot read image {path}: {type(error).__name__}: {error}; "
            "replace or delete the file"
        ) from error


class ImageFolderDomain(Dataset):
    """One domain: a list of ``(path, label)``; item ``i`` is ``(RGB PIL.Image, label)``."""

    def __init__(self, name: str, samples: list[tuple[Path, int]], classes: list[str]) -> None:
        self.name = name
        self.samples = samples
        self.classes = classes

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        path, label = self.samples[index]
        return load_rgb(path), label


def _visible_subdirs(folder: Path) -> list[str]:
    return sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith(".")
    )


def _class_images(class_dir: Path) -> list[Path]:
    """Sorted image files of one class folder; an empty (0-byte) image file is a UserError."""
    images = []
    for entry in os.scandir(class_dir):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        if os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
            continue
        if entry.stat().st_size == 0:
            raise UserError(f"image file is empty (0 bytes): {entry.path}; replace or delete it")
        images.append(Path(entry.path))
    return sorted(images)


def scan_domains(
    dataset_dir: Path, domains: list[str], how_to_get: str, domain_subdir: str = ""
) -> tuple[list[str], list[ImageFolderDomain]]:
    """Check the layout under ``dataset_dir`` and list every domain's images.

    The class folders of domain ``d`` are in ``dataset_dir / d / domain_subdir`` (Office-31
    keeps them in ``<domain>/images``; DomainBed's datasets directly in ``<domain>``).

    Returns the sorted class names shared by all domains and one ImageFolderDomain per
    domain (samples sorted by class, then file name).
    """
    def folder(domain: str) -> Path:
        return dataset_dir / domain / domain_subdir

    if not dataset_dir.is_dir():
        raise UserError(
            f"dataset folder not found: expected {folder(domains[0])}; get it with {how_to_get}"
        )
    missing = [domain for domain in domains if not folder(domain).is_dir()]
    if missing:
        raise UserError(
            f"domain folder missing: {folder(missing[0])} (expected domains: "
            f"{', '.join(domains)}); get the complete dataset with {how_to_get}"
        )
    class_lists = {domain: _visible_subdirs(folder(domain)) for domain in domains}
    reference_domain = domains[0]
    classes = class_lists[reference_domain]
    if not classes:
        raise UserError(f"no class folders in {folder(reference_domain)}; get it with {how_to_get}")
    for domain, names in class_lists.items():
        if names != classes:
            only_here = sorted(set(names) - set(classes))
            only_there = sorted(set(classes) - set(names))
            raise UserError(
                f"class folders differ between domains '{reference_domain}' and '{domain}' in "
                f"{dataset_dir}: only in '{domain}': {only_here or 'none'}, only in "
                f"'{reference_domain}': {only_there or 'none'}; every domain needs the same classes"
            )
    domain_datasets = []
    for domain in domains:
        samples: list[tuple[Path, int]] = []
        for label, class_name in enumerate(classes):
            class_dir = folder(domain) / class_name
            images = _class_images(class_dir)
            if not images:
                raise UserError(
                    f"class folder has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}): {class_dir}"
                )
            samples.extend((path, label) for path in images)
        domain_datasets.append(ImageFolderDomain(domain, samples, classes))
    return classes, domain_datasets


class ImageFolderMultiDomain(MultiDomainDataset):
    """A DomainBed image dataset: ENVIRONMENTS are the domain folder names under DATASET_DIR."""

    DATASET_DIR: ClassVar[str] = ""
    HOW_TO_GET: ClassVar[str] = DOMAINBED_DOWNLOAD
    DOMAIN_SUBDIR: ClassVar[str] = ""
    """Path from a domain folder to its class folders ("" in DomainBed's layout)."""
    IS_IMAGE = True
    SMALL_IMAGES = False
    CHECKPOINT_FREQ = 300  # DomainBed: VLCS, PACS, OfficeHome, TerraIncognita

    def __init__(self, root: str | Path | None) -> None:
        super().__init__(root)
        expected = "/".join(
            part for part in ("<root>", self.DATASET_DIR, self.ENVIRONMENTS[0], self.DOMAIN_SUBDIR) if part
        )
        if self.root is None:
            raise UserError(
                f"{type(self).__name__} needs --data_dir: the folder holding {expected}; "
                f"get it with {self.HOW_TO_GET}"
            )
        if not self.root.is_dir():
            raise UserError(
                f"data folder not found: {self.root} (expected {expected}); "
                f"get it with {self.HOW_TO_GET}"
            )
        self.classes, self.datasets = scan_domains(
            self.dataset_dir(), list(self.ENVIRONMENTS), self.HOW_TO_GET, self.DOMAIN_SUBDIR
        )
        self.input_shape = (3, 224, 224)

    def dataset_dir(self) -> Path:
        assert self.root is not None
        return self.root / self.DATASET_DIR


@register_dataset("PACS")
class PACS(ImageFolderMultiDomain):
    DATASET_DIR = "PACS"
    ENVIRONMENTS = ["art_painting", "cartoon", "photo", "sketch"]
    ENVIRONMENT_SHORT_NAMES = ["A", "C", "P", "S"]
    DEFAULT_BACKBONE = "tf_efficientnet_lite0"


@register_dataset("OfficeHome")
class OfficeHome(ImageFolderMultiDomain):
    DATASET_DIR = "office_home"
    ENVIRONMENTS = ["Art", "Clipart", "Product", "Real World"]
    ENVIRONMENT_SHORT_NAMES = ["A", "C", "P", "R"]
    TASK_SHORT_NAMES = ["Ar", "Cl", "Pr", "Rw"]  # tllib's Office-Home tables
    HOW_TO_GET = f"{DOMAINBED_DOWNLOAD} or https://www.hemanthdv.org/officeHomeDataset.html"


@register_dataset("VLCS")
class VLCS(ImageFolderMultiDomain):
    DATASET_DIR = "VLCS"
    ENVIRONMENTS = ["Caltech101", "LabelMe", "SUN09", "VOC2007"]
    ENVIRONMENT_SHORT_NAMES = ["C", "L", "S", "V"]


@register_dataset("TerraIncognita")
class TerraIncognita(ImageFolderMultiDomain):
    DATASET_DIR = "terra_incognita"
    ENVIRONMENTS = ["location_100", "location_38", "location_43", "location_46"]
    ENVIRONMENT_SHORT_NAMES = ["L100", "L38", "L43", "L46"]
    HOW_TO_GET = f"{DOMAINBED_DOWNLOAD} (it builds the location folders from the Caltech Camera Traps release)"


@register_dataset("DomainNet")
class DomainNet(ImageFolderMultiDomain):
    DATASET_DIR = "domain_net"
    ENVIRONMENTS = ["clipart", "infograph", "painting", "quickdraw", "real", "sketch"]
    ENVIRONMENT_SHORT_NAMES = ["clip", "info", "paint", "quick", "real", "sketch"]
    TASK_SHORT_NAMES = ["c", "i", "p", "q", "r", "s"]  # tllib's DomainNet tables
    CHECKPOINT_FREQ = 1000
    HOW_TO_GET = f"{DOMAINBED_DOWNLOAD} or http://ai.bu.edu/M3SDA/"


@register_dataset("PACSMini")
class PACSMini(PACS):
    """700 real PACS images (25 per class per domain, 96x96) shipped with dgsamp; root is ignored
    (``dgsamp train`` refuses ``--data_dir`` for it: ``READS_DATA_DIR`` is False).

    Not a DomainBed benchmark but the offline demo and test set, so every protocol preset
    keeps its packaged-weights backbone (no hub needed) and gives it a short step budget:
    51 steps (about 11 passes over its 140-image training in-splits at batch size 32),
    evaluated every 10 steps. Both are deliberate differences (docs/protocol.md).
    """

    FIXED_BACKBONE = "tf_efficientnet_lite0"
    READS_DATA_DIR = False
    N_STEPS = 51
    CHECKPOINT_FREQ = 10
    HOW_TO_GET = "a reinstall of dgsamp (the embedded copy ships in dgsamp/embedded/pacs_mini)"

    def __init__(self, root: str | Path | None = None) -> None:
        super().__init__(EMBEDDED_ROOT)
