"""Parts c (NVML energy and metering overhead) and d (GradSamp vs its controls) of
benchmarks/device_evidence.py; training runs go through ``dgsamp train`` and its files."""

from __future__ import annotations

import os
import re
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence_kit import (
    Part,
    PowerSampler,
    finite,
    last_json_object,
    mean_se,
    paired,
    read_json,
    read_jsonl,
)

if TYPE_CHECKING:
    from evidence_context import Context

BENCHMARKS = Path(__file__).resolve().parent
EPOCH_LINE = re.compile(r"epoch (\d+) \(step \d+\) \[")  # "epoch 2 (step 239) [backprop]  loss ..."


# ---------------------------------------------------------------- c: energy
def nvml_index() -> int:
    """NVML index of cuda:0 on a plain machine: the first CUDA_VISIBLE_DEVICES entry if numeric."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    return int(first) if first.isdigit() else 0


def epoch_energy(records: list[dict], epoch_end: dict[int, float], sampler: PowerSampler | None) -> list[dict]:
    """Per epoch: the trainer's train energy, its mean power, and NVML's sampled power x time
    over the train phase (placed by the time the epoch's progress line arrived)."""
    epochs = []
    for r in records:
        joules, seconds = finite(r.get("train_energy_J")), finite(r.get("train_seconds"))
        entry = {k: r.get(k) for k in ("epoch", "epoch_kind", "energy_source", "train_energy_J",
                                       "train_seconds", "eval_energy_J", "epoch_seconds")}
        entry["mean_train_W"] = joules / seconds if joules is not None and seconds else None
        if sampler is not None and r.get("epoch") in epoch_end and seconds:
            train_end = epoch_end[r["epoch"]] - (r["epoch_seconds"] - seconds)
            sampled = sampler.integrate_J(train_end - seconds, train_end)
            entry["nvml_sampled_train_J"] = sampled
            entry["ratio_to_sampled"] = joules / sampled if joules is not None and sampled else None
        epochs.append(entry)
    return epochs


def plausibility(epochs: list[dict], counter_J: float | None, power: dict, limit_W: float | None) -> dict:
    """Checks on the warm epochs (2 on): mean power between half the lowest sampled power and
    1.1 x the power limit; within 30% of sampled power x time; the trainer's train + eval
    joules no more than the GPU's energy counter moved over the whole run (+2%)."""
    warm = [e for e in epochs if (e.get("epoch") or 0) >= 2] or epochs
    watts = [e["mean_train_W"] for e in warm]
    ratios = [e.get("ratio_to_sampled") for e in warm]
    low, high = 0.5 * power.get("min_W", 0.0), 1.1 * limit_W if limit_W else None
    trainer_J = sum((finite(e["train_energy_J"]) or 0.0) + (finite(e["eval_energy_J"]) or 0.0) for e in epochs)
    checks = {
        "power_in_range": bool(watts) and all(w is not None and low <= w <= (high or w) for w in watts),
        "within_30pct_of_sampled": bool(ratios) and all(x is not None and 0.7 <= x <= 1.3 for x in ratios),
        "not_above_counter": counter_J is not None and trainer_J <= 1.02 * counter_J,
    }
    return {"checks": checks, "mean_train_W": watts, "ratio_to_sampled": ratios, "range_W": [low, high],
            "trainer_train_plus_eval_J": trainer_J, "counter_delta_J": counter_J}


def part_energy(ctx: Context, part: Part) -> None:
    sampler = None
    if ctx.cuda:
        try:
            sampler = PowerSampler(nvml_index())
            part.data.update(gpu=sampler.name(), power_limit_W=sampler.power_limit_W())
        except Exception as error:  # no pynvml, no driver library: recorded, not fatal
            part.data["nvml_error"] = f"{type(error).__name__}: {error}"
    else:
        part.data["skipped"] = "no CUDA"
        part.data["note"] = "the pipeline ran on the CPU with --energy auto; NVML checks skipped"
    run_dir = ctx.work / "energy_run"
    before = sampler.energy_J() if sampler else None
    with sampler or nullcontext():
        done = ctx.run(ctx.train_command(run_dir, *ctx.profile["energy_train"]), 0.6 * part.remaining(), "[c train] ")
    after = sampler.energy_J() if sampler else None
    counter_J = after - before if after is not None and before is not None else None
    epoch_end = {int(m.group(1)): t for t, text in done.lines if (m := EPOCH_LINE.match(text))}
    epochs = epoch_energy(read_jsonl(run_dir / "results.jsonl"), epoch_end, sampler)
    power = sampler.stats() if sampler else {}
    part.data.update(train_flags=ctx.profile["energy_train"], train_rc=done.rc, train_seconds=round(done.seconds, 1),
                     epochs=epochs, sampled_power=power, epoch_lines_found=sorted(epoch_end))
    if done.rc != 0:
        part.data["train_tail"] = done.tail(10).splitlines()
    name, target = "nvml_train_energy_non_null", "every epoch's train_energy_J is a positive NVML reading"
    if sampler is None:
        reason = part.data.get("nvml_error", "no CUDA")
        part.skip_target(name, target, reason)
        part.skip_target("nvml_energy_plausible", "agrees with NVML power x time", reason)
    else:
        energies = [e["train_energy_J"] for e in epochs]
        non_null = bool(epochs) and all((finite(j) or 0) > 0 and e["energy_source"] == "nvml"
                                        for j, e in zip(energies, epochs))
        part.target(name, target, {"train_energy_J": energies}, non_null)
        check = plausibility(epochs, counter_J, power, part.data.get("power_limit_W"))
        part.target("nvml_energy_plausible", "mean power within the GPU's range, within 30% of sampled "
                    "power x time, not above the energy counter", check, non_null and all(check["checks"].values()))
        sampler.close()
    part.save()
    if done.timed_out:
        return part.finish(f"time cap of {part.cap_s} s reached during the training run")
    command = [sys.executable, str(BENCHMARKS / "energy_overhead.py"), "--device", ctx.device,
               *ctx.profile["energy_overhead"]]
    overhead = ctx.run(command, part.remaining(), "[c overhead] ")
    report = last_json_object(overhead.stdout()) or {}
    part.data["overhead"] = {"rc": overhead.rc, **{k: report.get(k) for k in (
        "energy_source", "backbone", "batch", "image_size", "steps_per_block", "rounds",
        "seconds_median", "seconds_all", "overhead_percent")}}
    percent = (report.get("overhead_percent") or {}).get("phase_per_epoch")
    name, target = "metering_overhead_le_1pct", "one meter phase per epoch costs <= 1% of the training time"
    if report.get("energy_source") != "nvml":
        part.skip_target(name, target, f"meter source {report.get('energy_source')!r}, not nvml")
    else:
        part.target(name, target, {"phase_per_epoch_percent": percent}, None if percent is None else percent <= 1.0)
    part.finish(f"time cap of {part.cap_s} s reached during energy_overhead" if overhead.timed_out
                else None if overhead.rc == 0 else f"energy_overhead exited {overhead.rc}")


# ---------------------------------------------------------------- d: GradSamp
ARMS = ("off", "periodic", "skip", "fewer")
ARM_FLAGS = {
    "off": [], "fewer": [],
    "periodic": ["--gradsamp", "periodic", "--gradsamp_period", "3"],
    "skip": ["--gradsamp", "periodic", "--gradsamp_period", "3", "--gradsamp_dist", "skip"],
}
KEPT = ("epochs", "backprop_epochs", "gradsamp_epochs", "energy_source", "total_train_energy_J",
        "total_train_flops", "train_seconds", "final_ood_acc", "selected_ood_acc")
METRICS = ("total_train_energy_J", "selected_ood_acc", "final_ood_acc", "total_train_flops", "train_seconds")


def saved_percent(control: dict, gradsamp: dict, key: str) -> dict:
    """Mean ± SE over seeds of 100 x (control - gradsamp) / control."""
    values = []
    for seed in control.keys() & gradsamp.keys():
        c, g = finite(control[seed].get(key)), finite(gradsamp[seed].get(key))
        if c and g is not None:
            values.append(100.0 * (c - g) / c)
    return mean_se(values)


def gradsamp_statistics(results: dict[str, dict[int, dict]]) -> dict[str, Any]:
    """Per arm mean ± SE; GradSamp (periodic) against each control, paired by seed."""

    def column(arm: str, key: str, scale: float = 1.0) -> dict[int, Any]:
        return {s: (v * scale if finite(v := r.get(key)) is not None else None) for s, r in results[arm].items()}

    arms = {arm: {m: mean_se([r.get(m) for r in by_seed.values()]) for m in METRICS}
            for arm, by_seed in results.items()}
    compared = {}
    for control in ("off", "skip", "fewer"):
        compared[f"periodic_vs_{control}"] = {
            "energy_saved_J": paired(column(control, "total_train_energy_J"), column("periodic", "total_train_energy_J")),
            "energy_saved_percent": saved_percent(results[control], results["periodic"], "total_train_energy_J"),
            "flops_saved_percent": saved_percent(results[control], results["periodic"], "total_train_flops"),
            "selected_ood_acc_change_pp": paired(column("periodic", "selected_ood_acc", 100), column(control, "selected_ood_acc", 100)),
            "final_ood_acc_change_pp": paired(column("periodic", "final_ood_acc", 100), column(control, "final_ood_acc", 100)),
        }
    return {"arms": arms, "paired": compared}


def part_gradsamp(ctx: Context, part: Part) -> None:
    config, base = ctx.profile["gradsamp"], ctx.profile["gradsamp_train"]
    part.data.update(config={**config, "train_flags": base, "arm_flags": ARM_FLAGS}, device=ctx.device, runs=[])
    results: dict[str, dict[int, dict]] = {arm: {} for arm in ARMS}
    failed = []
    for seed in config["seeds"]:
        for arm in ARMS:
            if part.remaining() < 5:
                return part.finish(f"time cap of {part.cap_s} s reached before {arm}, seed {seed}")
            epochs = config["epochs"]
            if arm == "fewer":  # as many epochs as the GradSamp run of this seed backpropagated
                if seed not in results["periodic"]:
                    part.data["runs"].append({"arm": arm, "seed": seed, "skipped": "no periodic run"})
                    continue
                epochs = results["periodic"][seed]["backprop_epochs"]
            flags = [*base, "--epochs", str(epochs), "--steps_per_epoch", str(config["steps"]),
                     "--trial_seed", str(seed), *ARM_FLAGS[arm]]
            run_dir = ctx.work / "gradsamp" / f"{arm}_seed{seed}"
            done = ctx.run(ctx.train_command(run_dir, *flags), min(part.remaining(), ctx.profile["run_cap"]),
                           f"[d {arm} seed {seed}] ")
            summary = read_json(run_dir / "summary.json") if done.rc == 0 else None
            entry: dict[str, Any] = {"arm": arm, "seed": seed, "rc": done.rc, "timed_out": done.timed_out,
                                     "seconds": round(done.seconds, 1)}
            if summary is None:
                failed.append(f"{arm}/seed {seed}")
                entry["tail"] = done.tail(10).splitlines()
            else:
                results[arm][seed] = {k: summary.get(k) for k in KEPT}
                entry.update(results[arm][seed])
            part.data["runs"].append(entry)
            part.data["stats"] = gradsamp_statistics(results)
            part.save()
    paired_stats = part.data["stats"]["paired"]
    for control in ("off", "skip", "fewer"):
        row = paired_stats[f"periodic_vs_{control}"]
        measured = {k: row[k] for k in ("energy_saved_percent", "energy_saved_J", "selected_ood_acc_change_pp")}
        reported = all(row[k]["se"] is not None for k in ("energy_saved_percent", "selected_ood_acc_change_pp"))
        part.target(f"gradsamp_vs_{control}", "energy saved and OOD accuracy change, mean ± SE over paired seeds",
                    measured, reported)
    part.finish(f"runs failed: {', '.join(failed)}" if failed else None)
