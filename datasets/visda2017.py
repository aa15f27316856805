"""VisDA-2017 classification (Peng et al., 2017, "VisDA: The Visual Domain Adaptation Challenge").

12 classes in two domains of the official classification split: ``train`` (152,397
synthetic renderings of 3D models) and ``validation`` (55,388 real photos cropped from
MS COCO). The task is Synthetic -> Real. tllib (``tllib/vision/datasets/visda2017.py``)
reports the mean of the 12 per-class accuracies on it, hence ``ACCURACY``.

Layout: ``<root>/visda2017/<train|validation>/<class>/<image>``; the archive's
``image_list.txt`` files beside the class folders are ignored.
"""

from __future__ import annotations

from dgsamp.datasets.images import ImageFolderMultiDomain
from dgsamp.registry import register_dataset


@register_dataset("VisDA2017")
class VisDA2017(ImageFolderMultiDomain):
    """VisDA-2017 for domain adaptation. Large like DomainNet, so evaluated every 1,000 of
    its 5,001 steps (DomainBed's DomainNet period) rather than every 300."""

    DATASET_DIR = "visda2017"
    ENVIRONMENTS = ["train", "validation"]
    ENVIRONMENT_SHORT_NAMES = ["Synthetic", "Real"]
    DEFAULT_BACKBONE = "resnet101"  # tllib's VisDA-2017 table
    CHECKPOINT_FREQ = 1000
    ACCURACY = "mean_per_class"
    HOW_TO_GET = "`dgsamp data download VisDA2017 --data_dir DIR`"
