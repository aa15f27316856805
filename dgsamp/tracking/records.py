"""One results.jsonl line per epoch, and the run's summary.

A record holds DomainBed's keys (``epoch``, ``step``, ``env{i}_in_acc``, ``env{i}_out_acc``,
``args``, ``hparams``), the epoch's mean losses, and the energy accounting: ``epoch_kind``,
``ssprop_keep``, measured ``train_energy_J``/``eval_energy_J`` (None when unmeasured),
counted ``train_flops``, seconds, and running totals. See docs/results-format.md.
"""

from __future__ import annotations

from typing import Any


def make_record(
    *,
    base: dict[str, Any],
    previous: dict[str, Any] | None,
    epoch: int,
    step: int,
    test_envs: list[int],
    kind: str,
    keep: float,
    losses: dict[str, float],
    flops: int,
    accuracies: dict[str, float],
    train_joules: float | None,
    eval_joules: float | None,
    energy_source: str,
    train_seconds: float,
    eval_seconds: float,
    epoch_seconds: float,
) -> dict[str, Any]:
    """The record of one finished epoch; ``previous`` is the last record (None at epoch 1)."""
    previous = previous or {}
    cum_energy = previous.get("cum_train_energy_J", 0.0) if previous else 0.0
    cum_energy = None if train_joules is None or cum_energy is None else cum_energy + train_joules
    return {
        **base,
        "epoch": epoch,
        "step": step,
        **accuracies,
        "ood_acc": sum(accuracies[f"env{i}_in_acc"] for i in test_envs) / len(test_envs),
        **losses,
        "epoch_kind": kind,
        "ssprop_keep": keep if kind == "backprop" else None,
        "train_energy_J": train_joules,
        "eval_energy_J": eval_joules,
        "energy_source": energy_source,
        "train_flops": flops,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "epoch_seconds": epoch_seconds,
        "cum_train_energy_J": cum_energy,
        "cum_train_flops": previous.get("cum_train_flops", 0) + flops,
        "backprop_epochs": previous.get("backprop_epochs", 0) + (kind == "backprop"),
        "gradsamp_epochs": previous.get("gradsamp_epochs", 0) + (kind == "gradsamp"),
    }


def summarize(records: list[dict[str, Any]], job_id: str, test_envs: list[int]) -> dict[str, Any]:
    """Totals over the run (summary.json and the W&B summary)."""
    last = records[-1]
    eval_energy = [r["eval_energy_J"] for r in records]
    return {
        "job_id": job_id,
        "epochs": last["epoch"],
        "final_ood_acc": last["ood_acc"],
        "selected_ood_acc": selected_ood_acc(records, test_envs),
        "total_train_energy_J": last["cum_train_energy_J"],
        "total_eval_energy_J": None if None in eval_energy else sum(eval_energy),
        "energy_source": last["energy_source"],
        "total_train_flops": last["cum_train_flops"],
        "backprop_epochs": last["backprop_epochs"],
        "gradsamp_epochs": last["gradsamp_epochs"],
        "weights": last.get("weights"),
        "train_seconds": sum(r["train_seconds"] for r in records),
        "wall_seconds": sum(r["epoch_seconds"] for r in records),
    }


def selected_ood_acc(records: list[dict[str, Any]], test_envs: list[int]) -> float:
    """OOD accuracy at the epoch with the best training-domain validation accuracy (mean
    out-split accuracy of the training domains; the earliest epoch wins a tie) — DomainBed's
    default rule applied within one run."""
    num_envs = sum(1 for key in records[0] if key.startswith("env") and key.endswith("_out_acc"))
    train_envs = [i for i in range(num_envs) if i not in test_envs]

    def validation(record: dict[str, Any]) -> float:
        return sum(record[f"env{i}_out_acc"] for i in train_envs) / len(train_envs)

    return max(records, key=validation)["ood_acc"]
