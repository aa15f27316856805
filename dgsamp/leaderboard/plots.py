"""Leaderboard figures (PNG, matplotlib's Agg canvas; no display, no pyplot state).

- ``tradeoff_<dataset>_<backbone>_<task>.png``: per table, each variant's Avg OOD accuracy
  against its mean training energy, or training FLOPs when no variant has measured
  energy, with error bars: the standard error over trial seeds of both (DomainBed's
  ``std(a / sqrt(n))``, as the table cells). The Pareto front (no other variant is both
  cheaper and more accurate) is a step line through ringed points. Labels are placed
  where they overlap no other label, no point and stay inside the axes; the legend sits
  below the axes.
- ``runs/<run>.png``: per run, OOD accuracy (mean in-split accuracy of the test domains)
  by epoch (by step for runs without epochs) and, on a second axis, cumulative training
  energy (or FLOPs); epochs that did not backpropagate (e.g. GradSamp's) are shaded.

Axes use plain numbers (no ``1e11`` offset): values are scaled to a unit (kJ, MJ, TFLOP,
...) named in the axis label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.text import Annotation
from matplotlib.ticker import MaxNLocator, ScalarFormatter
from matplotlib.transforms import Bbox

from dgsamp.leaderboard.runs import Run
from dgsamp.leaderboard.tables import Leaderboard, Row, Table
from dgsamp.tracking import schema
from dgsamp.utils.atomic import atomic_write

FIGSIZE = (6.4, 4.8)  # inches
DPI = 100  # -> 640 x 480 pixels
ENERGY_UNITS = (("J", 1.0), ("kJ", 1e3), ("MJ", 1e6), ("GJ", 1e9))
FLOP_UNITS = (("FLOP", 1.0), ("MFLOP", 1e6), ("GFLOP", 1e9), ("TFLOP", 1e12), ("PFLOP", 1e15),
              ("EFLOP", 1e18))
# label offsets tried around a point, in points: rings of 8 directions, nearest first
_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
LABEL_OFFSETS = tuple((dx * r, dy * r) for r in (6, 12, 18, 26, 36, 48, 62)
                      for dx, dy in _DIRECTIONS)
MARKER_RADIUS_PX = 7  # a point's marker, as an obstacle for labels


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, accuracy) points no other point beats on both, by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best_acc = [], float("-inf")
    for index in order:
        if points[index][1] > best_acc:
            front.append(index)
            best_acc = points[index][1]
    return front


def standard_error(values: Sequence[float]) -> float:
    """``std(v / sqrt(n))`` (ddof 0, DomainBed's cell error); 0 for fewer than 2 values."""
    if len(values) < 2:
        return 0.0
    return float(np.std(np.asarray(values, dtype=float) / np.sqrt(len(values))))


def pick_unit(values: Sequence[float], units: Sequence[tuple[str, float]]) -> tuple[str, float]:
    """The largest ``(name, scale)`` in which the largest |value| is still at least 1."""
    top = max((abs(v) for v in values), default=0.0)
    chosen = units[0]
    for unit in units:
        if top >= unit[1]:
            chosen = unit
    return chosen


def plain_numbers(*axes: Axes) -> None:
    """Tick labels as plain numbers: no offset (``+1e11``), no scientific multiplier."""
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            formatter = ScalarFormatter(useOffset=False)
            formatter.set_scientific(False)
            axis.set_major_formatter(formatter)


def _new_figure() -> Figure:
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    """Render to PNG and write it atomically (``dgsamp.utils.atomic.atomic_write``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=DPI))
    return path


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


# ---------------------------------------------------------------- trade-off figure


@dataclass(frozen=True)
class TradeoffPoint:
    """One variant: cost (J or FLOPs) and accuracy (%), each with its SE over trial seeds."""

    label: str
    cost: float
    cost_err: float
    accuracy: float
    accuracy_err: float


def _run_cost(row: Row, energy: bool) -> dict[int, list[float]]:
    """Per trial seed, the whole-run cost (J or FLOPs) of each selected run."""
    by_seed: dict[int, list[float]] = {}
    for choice in row.choices:
        value = choice.run.total_train_energy_J if energy else choice.run.total_train_flops
        if value is not None:
            by_seed.setdefault(choice.run.trial_seed, []).append(value)
    return by_seed


def _seed_accuracies(row: Row, envs: Sequence[int]) -> list[float]:
    """Per trial seed that has every domain of ``envs``: its mean test accuracy there (%)."""
    seeds = set.intersection(*(set(row.trial_accs.get(env, {})) for env in envs)) if envs else set()
    return [100 * float(np.mean([row.trial_accs[env][seed] for env in envs]))
            for seed in sorted(seeds)]


def tradeoff_points(table: Table) -> tuple[list[TradeoffPoint], bool, str] | None:
    """The points of the trade-off figure, whether cost is energy (else FLOPs), and the
    accuracy label; None when no variant has both a cost and an accuracy.

    Accuracy is each row's Avg when every row has one, else the mean over the test
    domains every row covers (a sketch on one test domain still gets its figure).
    """
    energy = any(row.energy_kJ is not None for row in table.rows)
    if not energy and not any(row.flops is not None for row in table.rows):
        return None
    rows = [r for r in table.rows if (r.energy_kJ if energy else r.flops) is not None]
    if rows and all(r.avg is not None for r in rows):
        envs = list(range(len(table.env_names)))
        accuracies = [float(r.avg) for r in rows]  # type: ignore[arg-type]
        ylabel = "OOD accuracy, Avg over test domains (%)"
    else:
        envs = [i for i in range(len(table.env_names))
                if rows and all(r.cells[i].mean is not None for r in rows)]
        if not envs:
            return None
        accuracies = [sum(float(r.cells[i].mean) for i in envs) / len(envs) for r in rows]  # type: ignore[arg-type]
        ylabel = f"OOD accuracy, test domains {', '.join(table.env_names[i] for i in envs)} (%)"
    points = []
    for row, accuracy in zip(rows, accuracies):
        cost = 1000 * row.energy_kJ if energy else row.flops  # type: ignore[operator]
        seed_costs = [float(np.mean(values)) for values in _run_cost(row, energy).values()]
        points.append(TradeoffPoint(row.label, float(cost), standard_error(seed_costs), accuracy,  # type: ignore[arg-type]
                                    standard_error(_seed_accuracies(row, envs))))
    return points, energy, ylabel


def _intersection(a: Bbox, b: Bbox) -> float:
    """Area (px²) two boxes share; 0 when they are apart."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def _outside(box: Bbox, frame: Bbox) -> float:
    """Area (px²) of ``box`` outside ``frame``."""
    return box.width * box.height - _intersection(box, frame)


def place_labels(ax: Axes, labels: Sequence[Annotation], points_px: Sequence[tuple[float, float]]
                 ) -> None:
    """Move each label (an annotation of its point) to the first offset of
    :data:`LABEL_OFFSETS` where it overlaps no label placed before it, no point marker
    and stays inside the axes; where none does, to the offset that overlaps least
    (labels weigh most, then leaving the axes, then markers)."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    markers = [Bbox.from_bounds(x - MARKER_RADIUS_PX, y - MARKER_RADIUS_PX,
                                2 * MARKER_RADIUS_PX, 2 * MARKER_RADIUS_PX) for x, y in points_px]
    placed: list[Bbox] = []
    for label in labels:
        best: tuple[float, tuple[float, float], Bbox] | None = None
        for dx, dy in LABEL_OFFSETS:
            _set_offset(label, dx, dy)
            box = label.get_window_extent(renderer).padded(1)
            cost = (1e6 * sum(_intersection(box, other) for other in placed)
                    + 1e3 * _outside(box, frame) + sum(_intersection(box, m) for m in markers))
            if best is None or cost < best[0]:
                best = (cost, (dx, dy), box)
            if cost == 0:
                break
        assert best is not None
        _set_offset(label, *best[1])
        placed.append(best[2])


def _set_offset(label: Annotation, dx: float, dy: float) -> None:
    """Put the label ``(dx, dy)`` points from its point, aligned away from it."""
    label.set_position((dx, dy))
    label.set_horizontalalignment("left" if dx > 0 else "right" if dx < 0 else "center")
    label.set_verticalalignment("bottom" if dy > 0 else "top" if dy < 0 else "center")


def tradeoff_figure(table: Table, rule_name: str) -> Figure | None:
    """OOD accuracy vs cost for one table; None when no variant has both."""
    found = tradeoff_points(table)
    if found is None:
        return None
    points, energy, ylabel = found
    unit, scale = pick_unit([p.cost for p in points], ENERGY_UNITS if energy else FLOP_UNITS)
    xs = [p.cost / scale for p in points]
    ys = [p.accuracy for p in points]
    front = pareto_front(list(zip(xs, ys)))
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.errorbar(xs, ys, xerr=[p.cost_err / scale for p in points],
                yerr=[p.accuracy_err for p in points], fmt="o", color="tab:blue",
                ecolor="tab:blue", elinewidth=1, capsize=3, zorder=3,
                label="variant (mean ± SE over trial seeds)")
    ax.step([xs[i] for i in front], [ys[i] for i in front], where="post", color="tab:red",
            zorder=2, label="Pareto front")
    ax.scatter([xs[i] for i in front], [ys[i] for i in front], s=160, facecolors="none",
               edgecolors="tab:red", linewidths=1.5, zorder=4)
    what = "energy" if energy else "compute"
    ax.set_xlabel(f"training {what} per run ({unit})")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{table.dataset} ({table.protocol}, {table.backbone}) · {rule_name}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.margins(0.15)
    plain_numbers(ax)
    handles, legend_labels = ax.get_legend_handles_labels()
    fig.legend(handles, legend_labels, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    labels = [ax.annotate(p.label, (x, y), textcoords="offset points", xytext=(4, 4),
                          fontsize=7, zorder=5) for p, x, y in zip(points, xs, ys)]
    points_px = [tuple(ax.transData.transform((x, y))) for x, y in zip(xs, ys)]
    place_labels(ax, labels, points_px)  # type: ignore[arg-type]
    return fig


def plot_tradeoff(table: Table, rule_name: str, path: Path) -> Path | None:
    """Write :func:`tradeoff_figure` to ``path``; None (nothing written) when there is none."""
    fig = tradeoff_figure(table, rule_name)
    return None if fig is None else _save(fig, path)


# ---------------------------------------------------------------- one run


def ood_accuracy(run: Run, record: dict) -> float:
    """``ood_acc`` if recorded, else the mean in-split accuracy of the test domains (%)."""
    if record.get(schema.OOD_ACC) is not None:
        return 100 * float(record[schema.OOD_ACC])
    return 100 * schema.mean_test_accuracy(record, run.test_envs)


SHADES = ("tab:orange", "tab:purple", "tab:olive", "tab:cyan")


def run_figure(run: Run) -> Figure:
    """OOD accuracy and cumulative training cost by epoch (or step) of one run."""
    records = run.records
    by_epoch = all(isinstance(r.get(schema.EPOCH), int) for r in records) and run.source != "domainbed"
    xs = [r[schema.EPOCH] if by_epoch else r[schema.STEP] for r in records]
    fig = _new_figure()
    ax = fig.add_subplot()
    kinds = list(dict.fromkeys(r.get(schema.EPOCH_KIND) for r in records
                               if r.get(schema.EPOCH_KIND) not in (None, schema.BACKPROP)))
    colors = {kind: SHADES[i % len(SHADES)] for i, kind in enumerate(kinds)}
    for x, record in zip(xs, records):
        if record.get(schema.EPOCH_KIND) in colors:
            ax.axvspan(x - 0.5, x + 0.5, color=colors[record[schema.EPOCH_KIND]], alpha=0.25, lw=0)
    ax.plot(xs, [ood_accuracy(run, r) for r in records], marker="o", color="tab:blue",
            label="OOD accuracy")
    ax.set_xlabel("epoch" if by_epoch else "step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("OOD accuracy (%)")
    handles, labels = ax.get_legend_handles_labels()
    for kind, color in colors.items():
        handles.append(Patch(color=color, alpha=0.25))
        labels.append(f"{kind} epoch")
    axes = [ax]
    cost = _cumulative_cost(records)
    if cost is not None:
        values, label = cost
        twin = ax.twinx()
        twin.plot(xs, values, color="tab:green", marker=".", linestyle="--", label=label)
        twin.set_ylabel(label)
        axes.append(twin)
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    plain_numbers(*axes)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(handles, labels, fontsize=8, loc="lower right")
    envs = ",".join(str(e) for e in run.test_envs)
    ax.set_title(f"{run.dataset} · {run.variant.base_label()} · test envs {envs} · "
                 f"trial {run.trial_seed} · hparams {run.hparams_seed}", fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def _cumulative_cost(records: Sequence[dict]) -> tuple[list[float], str] | None:
    """Cumulative training energy (else FLOPs) in a readable unit, and its axis label."""
    energy = [r.get(schema.CUM_TRAIN_ENERGY_J) for r in records]
    flops = [r.get(schema.CUM_TRAIN_FLOPS) for r in records]
    if all(e is not None for e in energy):
        unit, scale = pick_unit(energy, ENERGY_UNITS)  # type: ignore[arg-type]
        return [e / scale for e in energy], f"cumulative training energy ({unit})"  # type: ignore[operator]
    if all(f is not None for f in flops):
        unit, scale = pick_unit(flops, FLOP_UNITS)  # type: ignore[arg-type]
        return [f / scale for f in flops], f"cumulative training compute ({unit})"  # type: ignore[operator]
    return None


def plot_run(run: Run, path: Path) -> Path:
    return _save(run_figure(run), path)


def write_plots(lb: Leaderboard, runs: Sequence[Run], out_dir: str | Path) -> list[Path]:
    """Every trade-off figure and one figure per given run (the CLI passes the runs the
    rule selected); returns the files written."""
    out = Path(out_dir)
    written = []
    for table in lb.tables:
        name = safe_name(f"tradeoff_{table.dataset}_{table.protocol}_{table.backbone}_{table.task}") + ".png"
        path = plot_tradeoff(table, table.selection_name or lb.rule.name, out / name)
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
