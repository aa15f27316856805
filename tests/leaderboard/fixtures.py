"""Run directories for the leaderboard tests, written in dgsamp's results format.

The accuracies follow a fixed, seeded learning curve (no training happens: the
leaderboard only reads files). ``write_fixture_runs(root)`` writes:

- PACS (4 domains), backbone resnet18, every test domain alone and every pair (for
  leave-one-domain-out), hparams seeds 0-1, trial seeds 0-2, these variants:
  ERM (10 epochs), ERM + GradSamp(K=3, layer), its skip control, ERM with 7 epochs (the
  fewer-epochs control: K=3 over 10 epochs leaves 7 backprop epochs),
  CORAL (10 epochs), CORAL + GradSamp(K=3, element) (no controls: shows "not found"),
  CORAL + ssProp(constant, keep=0.5);
- missing runs: CORAL test domain 3 trial seed 2; the skip control's test domain 0
  trial seed 1;
- one killed run: ERM test domain 1, hparams seed 1, trial seed 0 stopped after epoch 6
  with a torn last line and no ``done``;
- VLCS (4 domains), ERM, energy unmeasured (null), single test domains only, one
  hparams seed, trial seeds 0-1.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

PACS_VARIANTS = {
    "erm": dict(algorithm="ERM"),
    "erm_gs": dict(algorithm="ERM", gradsamp="periodic", gradsamp_dist="layer"),
    "erm_skip": dict(algorithm="ERM", gradsamp="periodic", gradsamp_dist="skip"),
    "erm_7ep": dict(algorithm="ERM", epochs=7),
    "coral": dict(algorithm="CORAL"),
    "coral_gs": dict(algorithm="CORAL", gradsamp="periodic", gradsamp_dist="element"),
    "coral_ssprop": dict(algorithm="CORAL", ssprop="constant"),
}
QUALITY = {"erm": 0.0, "erm_gs": 0.004, "erm_skip": -0.02, "erm_7ep": -0.012, "coral": 0.01,
           "coral_gs": 0.012, "coral_ssprop": 0.005}
MISSING = {("coral", (3,), 2), ("erm_skip", (0,), 1)}
KILLED = ("erm", (1,), 1, 0)


def run_args(dataset: str, test_envs: tuple[int, ...], hparams_seed: int, trial_seed: int,
             algorithm: str, epochs: int = 10, gradsamp: str = "off",
             gradsamp_dist: str = "layer", ssprop: str = "off", backbone: str = "resnet18",
             output_dir: str = "") -> dict:
    return {
        "dataset": dataset, "algorithm": algorithm, "backbone": backbone,
        "test_envs": list(test_envs), "task": "domain_generalization",
        "hparams_seed": hparams_seed, "trial_seed": trial_seed,
        "seed": 1000 * trial_seed + hparams_seed, "epochs": epochs, "steps_per_epoch": 10,
        "holdout_fraction": 0.2, "gradsamp": gradsamp, "gradsamp_period": 3,
        "gradsamp_prob": 0.3, "gradsamp_warmup": 2, "gradsamp_dist": gradsamp_dist,
        "gradsamp_scale": 1.0, "gradsamp_allow_consecutive": False, "ssprop": ssprop,
        "ssprop_keep": 0.5, "ssprop_keep_min": 0.5, "ssprop_warmup": 0,
        "ssprop_interleave": False, "energy": "auto", "output_dir": output_dir,
    }


def epoch_kinds(args: dict) -> list[str]:
    """K=3 periodic schedule with warmup 2: epochs 3, 6, 9 are sampled."""
    kinds = []
    for epoch in range(1, args["epochs"] + 1):
        sampled = args["gradsamp"] == "periodic" and epoch > args["gradsamp_warmup"] \
            and epoch % args["gradsamp_period"] == 0
        kinds.append("gradsamp" if sampled else "backprop")
    return kinds


def records_for(args: dict, quality: float, num_envs: int, measured: bool) -> list[dict]:
    rng = random.Random(json.dumps(args, sort_keys=True))
    hparam_effect = 0.015 * (args["hparams_seed"] - 0.5)
    records, cum_energy, cum_flops, backprop, sampled = [], 0.0, 0, 0, 0
    for epoch, kind in enumerate(epoch_kinds(args), start=1):
        progress = 1 - 0.45 * math.exp(-epoch / 3)
        record = {"args": args, "hparams": {"lr": 5e-5 * (1 + args["hparams_seed"]),
                                            "batch_size": 32}}
        for env in range(num_envs):
            shift = 0.12 if env in args["test_envs"] else 0.0
            base = (0.86 - 0.03 * env - shift + quality + hparam_effect) * progress
            record[f"env{env}_in_acc"] = round(min(1.0, base + rng.uniform(-0.01, 0.01)), 4)
            record[f"env{env}_out_acc"] = round(min(1.0, base + rng.uniform(-0.02, 0.02)), 4)
        record["ood_acc"] = sum(record[f"env{e}_in_acc"] for e in args["test_envs"]) / len(
            args["test_envs"])
        backprop += kind == "backprop"
        sampled += kind == "gradsamp"
        energy = round(1000 + rng.uniform(-50, 50), 1) if kind == "backprop" else 20.0
        if args["ssprop"] != "off" and kind == "backprop":
            energy = round(energy * 0.6, 1)
        flops = 2 * 10**12 if kind == "backprop" else 0
        if args["ssprop"] != "off" and kind == "backprop":
            flops = 12 * 10**11
        cum_energy += energy
        cum_flops += flops
        record.update({
            "epoch": epoch, "step": 10 * epoch, "epoch_kind": kind,
            "loss": None if kind == "gradsamp" else round(1.5 / epoch, 4),
            "ssprop_keep": 0.5 if args["ssprop"] != "off" else 1.0,
            "train_energy_J": energy if measured else None,
            "eval_energy_J": 50.0 if measured else None,
            "energy_source": "nvml" if measured else "unavailable",
            "train_flops": flops, "cum_train_energy_J": round(cum_energy, 1) if measured else None,
            "cum_train_flops": cum_flops, "backprop_epochs": backprop,
            "gradsamp_epochs": sampled,
        })
        records.append(record)
    return records


def write_run(run_dir: Path, records: list[dict], done: bool = True, torn: str = "") -> None:
    run_dir.mkdir(parents=True)
    text = "".join(json.dumps(record) + "\n" for record in records) + torn
    (run_dir / "results.jsonl").write_text(text)
    if done:
        (run_dir / "done").write_text("")


def write_fixture_runs(root: Path) -> Path:
    """Write the runs described in the module docstring under ``root``; returns root."""
    envs = range(4)
    test_env_sets = [(e,) for e in envs] + list(itertools.combinations(envs, 2))
    for name, spec in PACS_VARIANTS.items():
        for test_envs, hparams_seed, trial_seed in itertools.product(
                test_env_sets, (0, 1), (0, 1, 2)):
            if (name, test_envs, trial_seed) in MISSING:
                continue
            env_text = "".join(str(e) for e in test_envs)
            run_dir = root / "pacs" / f"{name}_te{env_text}_h{hparams_seed}_t{trial_seed}"
            args = run_args("PACS", test_envs, hparams_seed, trial_seed,
                            output_dir=str(run_dir.relative_to(root)), **spec)
            records = records_for(args, QUALITY[name], 4, measured=True)
            if (name, test_envs, hparams_seed, trial_seed) == KILLED:
                torn = json.dumps(records[6])[:57]
                write_run(run_dir, records[:6], done=False, torn=torn)
            else:
                write_run(run_dir, records)
    for test_env, trial_seed in itertools.product(envs, (0, 1)):
        run_dir = root / "vlcs" / f"erm_te{test_env}_h0_t{trial_seed}"
        args = run_args("VLCS", (test_env,), 0, trial_seed, "ERM", epochs=4,
                        output_dir=str(run_dir.relative_to(root)))
        write_run(run_dir, records_for(args, 0.0, 4, measured=False))
    return root
