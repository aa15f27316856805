"""Leaderboard figures (PNG, matplotlib's Agg canvas; no display, no pyplot state).

- ``tradeoff_<dataset>_<backbone>.png``: per table, each variant's Avg OOD accuracy
  against its mean training energy (kJ), or training FLOPs when no variant has measured
  energy; the Pareto front (no other variant is both cheaper and more accurate) is
  drawn as a step line through ringed points.
- ``runs/<run>.png``: per run, OOD accuracy (mean in-split accuracy of the test domains)
  by epoch (by step for runs without epochs) and, on a second axis, cumulative training
  energy (or FLOPs); GradSamp epochs are shaded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from dgsamp.leaderboard.tables import Leaderboard, Row, Table
from dgsamp.tracking.runs import Run
from dgsamp.utils.atomic import atomic_write

FIGSIZE = (6.4, 4.8)  # inches
DPI = 100  # -> 640 x 480 pixels


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, accuracy) points no other point beats on both, by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best_acc = [], float("-inf")
    for index in order:
        if points[index][1] > best_acc:
            front.append(index)
            best_acc = points[index][1]
    return front


def _save(fig: Figure, path: Path) -> Path:
    """Render to PNG and write it atomically (``dgsamp.utils.atomic.atomic_write``)."""
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=DPI))
    return path


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def _cost_axis(rows: Sequence[Row]) -> tuple[str, str] | None:
    if any(row.energy_kJ is not None for row in rows):
        return "energy_kJ", "training energy per run (kJ)"
    if any(row.flops is not None for row in rows):
        return "flops", "training FLOPs per run"
    return None


def _shared_accuracy(rows: Sequence[Row], env_names: Sequence[str]) -> tuple[list[float], str] | None:
    """Each row's Avg when all rows have one, else the mean over the test domains every row
    covers (a sketch on one test domain still gets its trade-off plot); None if none shared."""
    if rows and all(r.avg is not None for r in rows):
        return [float(r.avg) for r in rows], "OOD accuracy, Avg over test domains (%)"  # type: ignore
    shared = [i for i in range(len(env_names)) if rows and all(r.cells[i].mean is not None for r in rows)]
    if not shared:
        return None
    means = [sum(float(r.cells[i].mean) for i in shared) / len(shared) for r in rows]  # type: ignore
    return means, f"OOD accuracy, test domains {', '.join(env_names[i] for i in shared)} (%)"


def plot_tradeoff(table: Table, rule_name: str, path: Path) -> Path | None:
    """OOD accuracy vs cost for one table; None when no variant has both."""
    axis = _cost_axis(table.rows)
    if axis is None:
        return None
    attribute, xlabel = axis
    rows = [r for r in table.rows if getattr(r, attribute) is not None]
    accuracy = _shared_accuracy(rows, table.env_names)
    if accuracy is None:
        return None
    accuracies, ylabel = accuracy
    points = [(float(getattr(r, attribute)), y) for r, y in zip(rows, accuracies)]
    front = pareto_front(points)
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    ax = fig.add_subplot()
    ax.scatter([p[0] for p in points], [p[1] for p in points], color="tab:blue", zorder=3,
               label="variant")
    front_points = [points[i] for i in front]
    ax.step([p[0] for p in front_points], [p[1] for p in front_points], where="post",
            color="tab:red", zorder=2, label="Pareto front")
    ax.scatter([p[0] for p in front_points], [p[1] for p in front_points], s=160,
               facecolors="none", edgecolors="tab:red", linewidths=1.5, zorder=4)
    for row, (x, y) in zip(rows, points):
        ax.annotate(row.label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{table.dataset} ({table.backbone}) · {rule_name}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def ood_accuracy(run: Run, record: dict) -> float:
    """``ood_acc`` if recorded, else the mean in-split accuracy of the test domains (%)."""
    if record.get("ood_acc") is not None:
        return 100 * float(record["ood_acc"])
    accs = [record[f"env{env}_in_acc"] for env in run.test_envs]
    return 100 * sum(accs) / len(accs)


def plot_run(run: Run, path: Path) -> Path:
    records = run.records
    by_epoch = all(isinstance(r.get("epoch"), int) for r in records) and run.source != "domainbed"
    xs = [r["epoch"] if by_epoch else r["step"] for r in records]
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    ax = fig.add_subplot()
    for x, record in zip(xs, records):
        if record.get("epoch_kind") == "gradsamp":
            ax.axvspan(x - 0.5, x + 0.5, color="tab:orange", alpha=0.25, lw=0)
    ax.plot(xs, [ood_accuracy(run, r) for r in records], marker="o", color="tab:blue",
            label="OOD accuracy")
    ax.set_xlabel("epoch" if by_epoch else "step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("OOD accuracy (%)")
    handles, labels = ax.get_legend_handles_labels()
    if any(r.get("epoch_kind") == "gradsamp" for r in records):
        handles.append(Patch(color="tab:orange", alpha=0.25))
        labels.append("GradSamp epoch")
    energy = [r.get("cum_train_energy_J") for r in records]
    flops = [r.get("cum_train_flops") for r in records]
    cost = None
    if all(e is not None for e in energy):
        cost = ([e / 1000 for e in energy], "cumulative training energy (kJ)")
    elif all(f is not None for f in flops):
        cost = (flops, "cumulative training FLOPs")
    if cost is not None:
        twin = ax.twinx()
        twin.plot(xs, cost[0], color="tab:green", marker=".", linestyle="--", label=cost[1])
        twin.set_ylabel(cost[1])
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, fontsize=8, loc="lower right")
    envs = ",".join(str(e) for e in run.test_envs)
    ax.set_title(f"{run.dataset} · {run.variant.base_label()} · test envs {envs} · "
                 f"trial {run.trial_seed} · hparams {run.hparams_seed}", fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def write_plots(lb: Leaderboard, runs: Sequence[Run], out_dir: str | Path) -> list[Path]:
    """Every trade-off figure and one figure per given run (the CLI passes the runs the
    rule selected); returns the files written."""
    out = Path(out_dir)
    written = []
    for table in lb.tables:
        name = safe_name(f"tradeoff_{table.dataset}_{table.backbone}_{table.task}") + ".png"
        path = plot_tradeoff(table, lb.rule.name, out / name)
        if path is not None:
            written.append(path)
    used: set[str] = set()
    for run in runs:
        name = safe_name(Path(run.path).name)
        while name in used:
            name += "_"
        used.add(name)
        written.append(plot_run(run, out / "runs" / f"{name}.png"))
    return written
