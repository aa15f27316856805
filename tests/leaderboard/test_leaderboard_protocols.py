"""The leaderboard never mixes protocol presets in one table, and says which one each table holds.

DomainBed's own runs (no ``args.protocol``) are ``domainbed2020`` with torchvision's ResNet-50
(timm's ``resnet50.tv_in1k``): they share a table with dgsamp's ``domainbed2020`` runs of the
same backbone, while a ``dgsamp`` run of the same dataset gets its own.
"""

from __future__ import annotations

import json
from pathlib import Path

from dgsamp.leaderboard.render import render
from dgsamp.leaderboard.runs import load_runs
from dgsamp.leaderboard.selection import RULES
from dgsamp.leaderboard.tables import build_leaderboard


def write_run(root: Path, name: str, args: dict, hparams: dict, accuracy: float) -> None:
    """One finished single-test-domain run on 2 domains, evaluated at steps 0 and 300."""
    base = {"dataset": "VLCS", "algorithm": "ERM", "test_envs": [0], "hparams_seed": 0, "trial_seed": 0}
    records = [{"args": {**base, **args}, "hparams": hparams, "step": step,
                "env0_in_acc": accuracy, "env0_out_acc": accuracy, "env1_in_acc": 0.9, "env1_out_acc": 0.9}
               for step in (0, 300)]
    (root / name).mkdir(parents=True)
    (root / name / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (root / name / "done").write_text("")


def test_each_protocol_gets_its_own_table(tmp_path):
    write_run(tmp_path, "domainbed_own", {"steps": None}, {"resnet18": False}, 0.71)
    write_run(tmp_path, "dgsamp_2020", {"protocol": "domainbed2020", "backbone": "resnet50.tv_in1k",
                                        "trial_seed": 1}, {}, 0.73)
    write_run(tmp_path, "dgsamp_own", {"protocol": "dgsamp", "backbone": "resnet50.tv_in1k"}, {}, 0.50)
    write_run(tmp_path, "domainbed_erm_pp", {}, {"resnet50_augmix": True}, 0.80)
    runs = {run.path.rsplit("/", 1)[-1]: run for run in load_runs([tmp_path]).runs}
    assert runs["domainbed_own"].protocol == "domainbed2020"
    assert runs["domainbed_own"].backbone == "resnet50.tv_in1k"
    assert (runs["domainbed_erm_pp"].protocol, runs["domainbed_erm_pp"].backbone) == \
        ("domainbed2024", "resnet50.ram_in1k")
    lb = build_leaderboard(load_runs([tmp_path]), RULES["training_domain"])
    tables = {(t.protocol, t.backbone): t for t in lb.tables}
    assert set(tables) == {("dgsamp", "resnet50.tv_in1k"), ("domainbed2020", "resnet50.tv_in1k"),
                           ("domainbed2024", "resnet50.ram_in1k")}
    # DomainBed's trial 0 (71 %) and dgsamp's trial 1 (73 %) are two trial seeds of one cell
    assert [c.mean for c in tables["domainbed2020", "resnet50.tv_in1k"].rows[0].cells] == [72.0, None]
    markdown = render(lb, "markdown")
    for protocol in ("dgsamp", "domainbed2020", "domainbed2024"):
        assert f"## VLCS · protocol {protocol} · backbone" in markdown
    assert "Dataset: VLCS (domainbed2020, resnet50.tv_in1k, domain_generalization)" in render(lb, "domainbed")
