"""Where every dataset dgsamp knows comes from, kept as data.

Each :class:`DatasetSource` lists its :class:`Archive` files: the URL, the published checksum
(``None`` where the host publishes none: the command then says "no published checksum"), the
size in bytes (exact where published, otherwise an estimate rounded up; it only sizes the
free-space check) and where the archive's content goes under ``<data_dir>/<target>``.

Sources of the table (facts only; no code is copied):

- DomainBed ``domainbed/scripts/download.py`` @ b93c22a1cfc3b2428398272c1a116c8de1f4139e
  (facebookresearch/DomainBed): PACS, VLCS, Office-Home (Google Drive ids and the folder each
  archive unpacks to), DomainNet (the six zips, clipart and painting from ``groundtruth/``,
  and ``domainbed/misc/domain_net_duplicates.txt``), TerraIncognita (the CCT20 images and
  annotations on LILA's Google Cloud bucket, since commit 3cf2e20).
- torchvision ``torchvision/datasets/mnist.py`` (0.29): the MNIST mirror and the md5 of each file.
- tllib ``tllib/vision/datasets/office31.py`` @ d7351aca6a14c6b6e73e5b2861bb329c54b30abf
  (thuml/Transfer-Learning-Library): the Office-31 per-domain archives.
- VisDA-2017 ``classification_track/README.md`` (VisionLearningGroup/taskcv-2017-public): the
  official ``train.tar`` (synthetic) and ``validation.tar`` (real, 2.8 GB).

A plugin (``--plugin FILE.py``) may add or replace an entry with :func:`register_source`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgsamp.errors import UserError

DOMAINBED_COMMIT = "b93c22a1cfc3b2428398272c1a116c8de1f4139e"
MB = 1_000_000
GB = 1_000_000_000


def google_drive(file_id: str) -> str:
    """Google Drive's direct-download address (``confirm=t`` skips the virus-scan page of big files)."""
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


@dataclass(frozen=True)
class Archive:
    """One file to fetch.

    ``checksum`` is ``"md5:<hex>"`` or ``"sha256:<hex>"``, or ``None`` when none is published.
    ``root`` is the path inside the unpacked archive (the file itself for a plain file) that
    becomes ``dest`` under the dataset folder (``""``: the dataset folder itself); ``dest=None``
    leaves it for the dataset's finishing step (TerraIncognita, DomainNet).
    """

    file_name: str
    url: str
    size: int
    checksum: str | None
    root: str
    dest: str | None

    @property
    def kind(self) -> str:
        """``zip``, ``tar`` (also .tar.gz and .tgz) or ``file`` (kept as it is, e.g. MNIST's .gz)."""
        name = self.file_name.lower()
        if name.endswith(".zip"):
            return "zip"
        if name.endswith((".tar", ".tar.gz", ".tgz")):
            return "tar"
        return "file"


@dataclass(frozen=True)
class DatasetSource:
    """A dataset's archives and the folder they build: ``<data_dir>/<target>``."""

    name: str
    target: str
    archives: tuple[Archive, ...]
    origin: str
    finish: str | None = None  # a finishing step in ``extract.FINISHING_STEPS``

    @property
    def total_size(self) -> int:
        return sum(archive.size for archive in self.archives)


PACS = DatasetSource(
    "PACS", "PACS",
    (Archive("PACS.zip", google_drive("1JFr8f805nMUelQWWmfnJR3y4_SYoN5Pd"), 220 * MB, None, "kfold", ""),),
    origin="DomainBed download.py (Li et al., ICCV 2017; original: eecs.qmul.ac.uk/~dl307/project_iccv2017)",
)

OFFICE_HOME = DatasetSource(
    "OfficeHome", "office_home",
    (Archive("office_home.zip", google_drive("1uY0pj7oFsjMxRwaD3Sxy0jgel0fsYXLC"), 1300 * MB, None,
             "OfficeHomeDataset_10072016", ""),),
    origin="DomainBed download.py (Venkateswara et al., CVPR 2017; original: hemanthdv.org/OfficeHome-Dataset)",
)

VLCS = DatasetSource(
    "VLCS", "VLCS",
    (Archive("VLCS.tar.gz", google_drive("1skwblH1_okBwxWxmRsp9_qi15hyPpxg8"), 1300 * MB, None, "VLCS", ""),),
    origin="DomainBed download.py (Fang et al., ICCV 2013; original: eecs.qmul.ac.uk/~dl307/project_iccv2017)",
)

_LILA = "https://storage.googleapis.com/public-datasets-lila/caltechcameratraps"
TERRA_INCOGNITA = DatasetSource(
    "TerraIncognita", "terra_incognita",
    (
        Archive("eccv_18_all_images_sm.tar.gz", f"{_LILA}/eccv_18_all_images_sm.tar.gz", 6500 * MB, None,
                "eccv_18_all_images_sm", None),
        Archive("eccv_18_annotations.tar.gz", f"{_LILA}/eccv_18_annotations.tar.gz", 20 * MB, None,
                "eccv_18_annotation_files", None),
    ),
    origin="DomainBed download.py @ 3cf2e20 (Beery et al., ECCV 2018: CCT20 on lila.science)",
    finish="terra_incognita",
)

_VISDA2019 = "http://csr.bu.edu/ftp/visda/2019/multi-source"
_DOMAINNET_ZIPS = (  # (domain, URL, size in bytes: an estimate from the published archives)
    ("clipart", f"{_VISDA2019}/groundtruth/clipart.zip", 1300 * MB),
    ("infograph", f"{_VISDA2019}/infograph.zip", 4100 * MB),
    ("painting", f"{_VISDA2019}/groundtruth/painting.zip", 3700 * MB),
    ("quickdraw", f"{_VISDA2019}/quickdraw.zip", 500 * MB),
    ("real", f"{_VISDA2019}/real.zip", 6100 * MB),
    ("sketch", f"{_VISDA2019}/sketch.zip", 2700 * MB),
)
DOMAIN_NET_DUPLICATES = Archive(
    "domain_net_duplicates.txt",
    f"https://raw.githubusercontent.com/facebookresearch/DomainBed/{DOMAINBED_COMMIT}"
    "/domainbed/misc/domain_net_duplicates.txt",
    365_663,
    "sha256:a52b4ab70203f4f3df381077694dba3e33ff44c26407e1c5faca76919c702770",  # of the file at that commit
    "domain_net_duplicates.txt", None,
)
DOMAIN_NET = DatasetSource(
    "DomainNet", "domain_net",
    (*(Archive(f"{domain}.zip", url, size, None, domain, domain) for domain, url, size in _DOMAINNET_ZIPS),
     DOMAIN_NET_DUPLICATES),
    origin="DomainBed download.py (Peng et al., ICCV 2019; ai.bu.edu/M3SDA), minus DomainBed's duplicates list",
    finish="domain_net_duplicates",
)

_MNIST_HOST = "https://ossci-datasets.s3.amazonaws.com/mnist"
_MNIST_FILES = (  # (file, exact size, md5 as torchvision's mnist.py lists it)
    ("train-images-idx3-ubyte.gz", 9_912_422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte.gz", 28_881, "d53e105ee54ea40749a09fcbcd1e9432"),
    ("t10k-images-idx3-ubyte.gz", 1_648_877, "9fb629c4189551a2d022fa330f9573f3"),
    ("t10k-labels-idx1-ubyte.gz", 4_542, "ec29112dd5afa0611ce80d1b7f02629c"),
)
MNIST = DatasetSource(
    "MNIST", "MNIST",
    tuple(Archive(name, f"{_MNIST_HOST}/{name}", size, f"md5:{md5}", name, f"raw/{name}")
          for name, size, md5 in _MNIST_FILES),
    origin="torchvision's MNIST mirror (LeCun et al. 1998; original: yann.lecun.com/exdb/mnist)",
)

_TSINGHUA = "https://cloud.tsinghua.edu.cn/f"
OFFICE31 = DatasetSource(
    "Office31", "office31",
    (
        Archive("amazon.tgz", f"{_TSINGHUA}/ec12dfcddade43ab8101/?dl=1", 100 * MB, None, "amazon", "amazon"),
        Archive("dslr.tgz", f"{_TSINGHUA}/a41d818ae2f34da7bb32/?dl=1", 100 * MB, None, "dslr", "dslr"),
        Archive("webcam.tgz", f"{_TSINGHUA}/8a41009a166e4131adcd/?dl=1", 100 * MB, None, "webcam", "webcam"),
    ),
    origin="tllib office31.py (Saenko et al., ECCV 2010)",
)

_VISDA2017 = "http://csr.bu.edu/ftp/visda17/clf"
VISDA2017 = DatasetSource(
    "VisDA2017", "visda2017",
    (
        Archive("train.tar", f"{_VISDA2017}/train.tar", 13 * GB, None, "train", "train"),
        Archive("validation.tar", f"{_VISDA2017}/validation.tar", 2900 * MB, None, "validation", "validation"),
    ),
    origin="VisDA-2017 classification track, official tars (Peng et al., arXiv:1710.06924)",
)

SOURCES: dict[str, DatasetSource] = {
    "PACS": PACS,
    "OfficeHome": OFFICE_HOME,
    "VLCS": VLCS,
    "TerraIncognita": TERRA_INCOGNITA,
    "DomainNet": DOMAIN_NET,
    "RotatedMNIST": MNIST,
    "ColoredMNIST": MNIST,
    "Office31": OFFICE31,
    "VisDA2017": VISDA2017,
}


def register_source(name: str, source: DatasetSource) -> None:
    """Add or replace the entry ``name`` (for plugins: a dataset of their own, or a new host)."""
    SOURCES[name] = source


def resolve_name(name: str, known: dict[str, object] | None = None) -> str:
    """The table's spelling of ``name`` (case-insensitive); an unknown name is a UserError."""
    known = SOURCES if known is None else known
    matches = [key for key in known if key.lower() == name.lower()]
    if not matches:
        raise UserError(f"unknown dataset '{name}'; known: {', '.join(known)}")
    return matches[0]
