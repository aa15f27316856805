"""The test-time adaptation methods ``dgsamp adapt --method`` knows, by name."""

from __future__ import annotations

from dgsamp.adaptation.base import TestTimeAdapter
from dgsamp.adaptation.bn_adapt import BNAdapt
from dgsamp.adaptation.pseudo_label import PseudoLabel
from dgsamp.adaptation.shot_im import SHOTIM
from dgsamp.adaptation.t3a import T3A
from dgsamp.adaptation.tent import Tent
from dgsamp.adaptation.tent_bn import TentBN

METHODS: dict[str, type[TestTimeAdapter]] = {
    cls.NAME: cls for cls in (T3A, Tent, TentBN, SHOTIM, PseudoLabel, BNAdapt)
}
