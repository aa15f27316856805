"""``dgsamp list algorithms --verbose`` through the real CLI: a block per algorithm."""

from __future__ import annotations

import re

from dgsamp.registry import ALGORITHMS
from tests.helpers import run_cli

FIELDS = ("paper:", "unlabeled target data:", "hparams:", "source:")
COMMIT = re.compile(r"@ [0-9a-f]{7,40}\b")


def blocks(stdout: str) -> dict[str, list[str]]:
    """Algorithm name -> its indented lines (the final common-hparams line is its own key)."""
    found: dict[str, list[str]] = {}
    name = None
    for line in stdout.splitlines():
        if line.startswith("    "):
            found[name].append(line.strip())
        else:
            name = line.split(":")[0] if line.startswith("common hparams") else line
            found[name] = [line]
    return found


def test_verbose_listing_shows_paper_unlabeled_use_hparams_and_source(tmp_path):
    plugin = tmp_path / "lab.py"
    plugin.write_text(
        "from dgsamp.algorithms.base import Algorithm\n"
        "from dgsamp.registry import register_algorithm\n\n"
        "@register_algorithm('LabERM')\n"
        "class LabERM(Algorithm):\n"
        "    '''A lab's algorithm that states no paper or source.'''\n"
    )
    completed = run_cli("list", "algorithms", "--verbose", "--plugin", str(plugin))
    assert completed.returncode == 0, completed.stderr
    found = blocks(completed.stdout)
    assert set(found) == {*ALGORITHMS.names(), "LabERM", "common hparams"}
    for name in ALGORITHMS.names():  # every built-in states its paper and source of truth
        lines = found[name][1:]
        assert [line.split(" ")[0] for line in lines] == ["paper:", "unlabeled", "hparams:", "source:"], name
        assert "not stated" not in " ".join(lines), name
        assert COMMIT.search(lines[3]) or "@" not in lines[3], lines[3]
    cad = found["CAD"]
    assert "arXiv:2201.00057" in cad[1] and "ICLR 2022" in cad[1]
    assert cad[2] == "unlabeled target data: ignored"
    assert cad[3] == "hparams:  lmbda=0.1, temperature=0.1, is_normalized=False, is_project=False, is_flipped=True"
    assert cad[4] == "source:   DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"
    assert found["DANN"][2] == "unlabeled target data: used (domain adaptation)"
    assert "lr_d=5e-05 (small 0.001)" in found["DANN"][3]
    assert "rdm_lambda=5.0 (DomainNet 0.5)" in found["RDM"][3]
    assert "batch_size=88 (small 64, DomainNet 40, TerraIncognita 40)" in found["RDM"][3]
    assert found["ERM"][3] == "hparams:  (none of its own)"
    assert found["LabERM"][1:] == [
        "paper:    not stated", "unlabeled target data: ignored",
        "hparams:  (none of its own)", "source:   not stated",
    ]
    assert found["common hparams"][0].startswith("common hparams: lr=5e-05 (small 0.001), ")
    refused = run_cli("list", "datasets", "--verbose")
    assert refused.returncode == 2 and "--verbose describes algorithms only" in refused.stderr


def test_verbose_listing_says_which_methods_need_a_target():
    completed = run_cli("list", "algorithms", "--verbose")
    assert completed.returncode == 0, completed.stderr
    found = blocks(completed.stdout)
    required = "unlabeled target data: required (domain adaptation only: --source S --target T)"
    needing = {name for name in ALGORITHMS.names() if found[name][2] == required}
    # tllib's DA methods train only with a target; DANN also runs as DomainBed's DG method
    assert {"MCD", "ADDA", "MDD", "AFN", "FixMatch", "CDAN", "DANN_tllib"} <= needing
    assert "DANN" not in needing and found["DANN"][2] == "unlabeled target data: used (domain adaptation)"
    assert needing == {name for name in ALGORITHMS.names() if ALGORITHMS.get(name).NEEDS_TARGET}
