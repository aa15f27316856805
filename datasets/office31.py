"""Office-31 (Saenko et al., ECCV 2010, "Adapting Visual Category Models to New Domains").

4,110 images of 31 office objects in three domains: ``amazon`` (product photos from
amazon.com, 2,817), ``dslr`` (498) and ``webcam`` (795). The standard unsupervised domain
adaptation benchmark of tllib (``tllib/vision/datasets/office31.py``), scored per task
such as A -> W.

Layout, as the official archive unpacks: ``<root>/office31/<domain>/images/<class>/<image>.jpg``.
Classes are the 31 sorted folder names (``back_pack`` ... ``trash_can``), label ``k`` the
same class in every domain.
"""

from __future__ import annotations

from dgsamp.datasets.images import ImageFolderMultiDomain
from dgsamp.registry import register_dataset


@register_dataset("Office31")
class Office31(ImageFolderMultiDomain):
    """Office-31 for domain adaptation; training length and evaluation period are DomainBed's
    image defaults (5,001 steps, evaluated every 300)."""

    DATASET_DIR = "office31"
    DOMAIN_SUBDIR = "images"
    ENVIRONMENTS = ["amazon", "dslr", "webcam"]
    ENVIRONMENT_SHORT_NAMES = ["A", "D", "W"]
    DEFAULT_BACKBONE = "resnet50"  # tllib's Office-31 table
    HOW_TO_GET = "`dgsamp data download Office31 --data_dir DIR`"
