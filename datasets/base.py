"""The interface every multi-domain dataset implements.

A dataset is a list of domains (DomainBed calls them environments). Domain ``i`` is a
``torch.utils.data.Dataset`` whose items are ``(x, y)``: ``x`` a ``PIL.Image`` in RGB for
image datasets (``IS_IMAGE = True``; the backbone's transforms are applied later), or a
float tensor ``[C, H, W]`` for tensor datasets (MNIST family), and ``y`` an int label.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from torch.utils.data import Dataset


class MultiDomainDataset:
    """Subclasses fill ``self.datasets``, ``self.classes`` and ``self.input_shape``."""

    ENVIRONMENTS: ClassVar[list[str]] = []
    ENVIRONMENT_SHORT_NAMES: ClassVar[list[str]] = []
    """Leaderboard column names, one per environment (DomainBed's table headers, e.g.
    PACS's "A", "C", "P", "S"). A subclass that sets ``ENVIRONMENTS`` without them gets a
    copy of ``ENVIRONMENTS``; one that sets neither inherits both."""
    TASK_SHORT_NAMES: ClassVar[list[str]] = []
    """The domains' names in DA task labels as tllib's tables write them (Office-Home's
    "Ar", "Cl", "Pr", "Rw"; DomainNet's "c", "i", ...); empty: ENVIRONMENT_SHORT_NAMES."""
    IS_IMAGE: ClassVar[bool] = True
    SMALL_IMAGES: ClassVar[bool] = False  # DomainBed's hparam defaults for MNIST-size inputs
    DEFAULT_BACKBONE: ClassVar[str] = "resnet50"
    """The backbone of ``--protocol dgsamp`` (the DomainBed presets use ResNet-50 or ``FIXED_BACKBONE``)."""
    FIXED_BACKBONE: ClassVar[str | None] = None
    """A backbone every protocol preset uses for this dataset (MNIST: DomainBed's MNIST CNN);
    None: the preset's ImageNet ResNet-50 (``dgsamp.config.presets``)."""
    READS_DATA_DIR: ClassVar[bool] = True  # False: the data ships with dgsamp and --data_dir is refused
    N_STEPS: ClassVar[int] = 5001
    """DomainBed's default training length in steps (``MultipleDomainDataset.N_STEPS``)."""
    CHECKPOINT_FREQ: ClassVar[int] = 100
    """DomainBed's default evaluation period in steps (``MultipleDomainDataset.CHECKPOINT_FREQ``)."""
    ACCURACY: ClassVar[str] = "overall"
    """How a domain's accuracy is reported: "overall" (correct / all) or "mean_per_class" (the
    mean of per-class accuracies, tllib's VisDA-2017 metric; ``dgsamp.scores.accuracy``)."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "ENVIRONMENTS" in vars(cls) and "ENVIRONMENT_SHORT_NAMES" not in vars(cls):
            cls.ENVIRONMENT_SHORT_NAMES = list(cls.ENVIRONMENTS)
        if len(cls.ENVIRONMENT_SHORT_NAMES) != len(cls.ENVIRONMENTS):
            raise TypeError(
                f"{cls.__name__}: {len(cls.ENVIRONMENT_SHORT_NAMES)} ENVIRONMENT_SHORT_NAMES for "
                f"{len(cls.ENVIRONMENTS)} ENVIRONMENTS"
            )

    def __init__(self, root: str | Path | None) -> None:
        self.root = None if root is None else Path(root)
        self.datasets: list[Dataset] = []
        self.classes: list[str] = []
        self.input_shape: tuple[int, int, int] = (3, 224, 224)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def environments(self) -> list[str]:
        return list(self.ENVIRONMENTS)

    def __len__(self) -> int:
        return len(self.datasets)

    def __getitem__(self, index: int) -> Dataset:
        return self.datasets[index]
