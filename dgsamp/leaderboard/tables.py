"""Aggregate selected runs into leaderboard tables: accuracy beside energy and FLOPs.

One table per (dataset, protocol, backbone, task): runs of different protocol presets
(``Run.protocol``) never share a table; one row per method variant; one column per test
domain plus Avg. A cell is DomainBed's: the selection rule picks one checkpoint
per (variant, test domain, trial seed); the cell is the mean over trial seeds of its
test accuracy, ``100 * mean(a)``, and the error ``100 * std(a / sqrt(n))`` (numpy's
population std, as DomainBed's ``collect_results``). Avg is the mean of the column means,
missing ("X") when any column is. The averages table holds, per variant and dataset,
the mean over trial seeds of the per-seed mean over test domains.

Domain adaptation runs (``task == domain_adaptation``) get tllib's shape instead: one
column per task (sources→targets as ``dgsamp train`` labels it, e.g. ``A→W``, ``Ar→Cl``;
sorted by sources, then targets), a cell
per (variant, task) over trial seeds of the target accuracy at the point the DA rule
picks (``dgsamp.leaderboard.adaptation_selection``), the same mean ± err and Avg.

Cost columns use the runs the rule selected (one per test domain and trial seed):
energy = mean of their whole-run training energy (``cum_train_energy_J`` of the last
record), missing if any selected run is unmeasured; FLOPs likewise; "saved" compares
with the plain variant (same algorithm, no training mode on, same epochs) of the same
table; accuracy per kWh = Avg (%) / (mean energy in kWh).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from dgsamp.leaderboard.adaptation_cost import mean_adaptation_cost
from dgsamp.leaderboard.adaptation_selection import (
    AdaptationRule,
    adaptation_rule,
    check_recorded,
    run_domains,
    task_label,
)
from dgsamp.leaderboard.controls import is_control, pair_controls
from dgsamp.leaderboard.runs import Run, RunSet, group_runs
from dgsamp.leaderboard.selection import Choice, SelectionRule
from dgsamp.leaderboard.variant import Variant, registered_modes
from dgsamp.tracking import schema

TableKey = tuple[str, str, str, str]  # dataset, protocol, backbone, task


@dataclass(frozen=True)
class Cell:
    """Mean and standard error (in %) over trial seeds; ``n`` trial seeds, 0 = missing."""

    mean: float | None
    err: float | None
    n: int

    @staticmethod
    def of(fractions: Sequence[float]) -> Cell:
        if not fractions:
            return Cell(None, None, 0)
        values = np.asarray(list(fractions), dtype=float)
        mean = 100 * np.mean(values)
        err = 100 * np.std(values / np.sqrt(len(values)))
        return Cell(float(mean), float(err), len(values))


@dataclass
class Row:
    variant: Variant
    label: str
    cells: list[Cell]
    avg: float | None
    choices: list[Choice]
    trial_accs: dict[int, dict[int, float]]  # test_env -> trial_seed -> test acc (fraction)
    energy_kJ: float | None = None
    energy_saved_pct: float | None = None
    flops: float | None = None
    flops_saved_pct: float | None = None
    acc_per_kWh: float | None = None
    adapt_energy_kJ: float | None = None  # test-time adaptation rows: its cost on top of training
    adapt_flops: float | None = None


@dataclass
class Table:
    dataset: str
    backbone: str
    task: str
    env_names: list[str]
    rows: list[Row]
    controls: list = field(default_factory=list)  # list[controls.ControlRow]
    protocol: str = "dgsamp"  # the protocol preset of every run in the table
    selection_name: str | None = None  # the rule's name when it is not the leaderboard's (DA tables)


@dataclass
class AveragesTable:
    backbone: str
    task: str
    datasets: list[str]
    rows: list[tuple[str, list[Cell], float | None]]  # label, cell per dataset, Avg
    protocol: str = "dgsamp"
    selection_name: str | None = None


@dataclass
class Leaderboard:
    rule: SelectionRule | AdaptationRule
    tables: list[Table]
    averages: list[AveragesTable]
    num_records: int
    num_runs: int
    warnings: list[str]


def registered_dataset(dataset: str) -> type | None:
    """The registered dataset class named ``dataset`` (None when unknown)."""
    try:
        from dgsamp.registry import DATASETS

        if dataset in DATASETS:
            return DATASETS.get(dataset)
    except Exception:  # a broken dataset plugin must not stop the leaderboard
        pass
    return None


def short_names(dataset: str) -> list[str]:
    """The registered dataset's ``ENVIRONMENT_SHORT_NAMES`` (empty when unknown)."""
    return list(getattr(registered_dataset(dataset), "ENVIRONMENT_SHORT_NAMES", None) or [])


def env_names(dataset: str, num_envs: int) -> list[str]:
    """Column names: the registered dataset's ``ENVIRONMENT_SHORT_NAMES`` (DomainBed's
    table headers, e.g. ``A C P S`` for PACS), else ``env0, env1, ...``."""
    names = short_names(dataset)
    if len(names) != num_envs:
        names = [f"env{i}" for i in range(num_envs)]
    return names


def variant_order(variant: Variant) -> tuple:
    """ERM first, then algorithms alphabetically; within one: plain first, then by the
    modes that are on, compared from the first registered mode (ssProp alone before
    GradSamp), the equal-compute controls last; an ensemble right after the variant of its
    members; ties by the variant's fields."""
    registered = registered_modes()
    uses = tuple(name in variant.mode_names for name in registered)
    unknown = tuple(sorted(set(variant.mode_names) - set(registered)))
    return (variant.algorithm != "ERM", variant.algorithm, is_control(variant), uses, unknown,
            variant.ensemble is not None, repr(variant))


def variant_labels(variants: Sequence[Variant]) -> dict[Variant, str]:
    """Base labels; variants sharing one get the fields that tell them apart appended."""
    by_label: dict[str, list[Variant]] = {}
    for variant in variants:
        by_label.setdefault(variant.base_label(), []).append(variant)
    labels = {}
    for label, same in by_label.items():
        if len(same) == 1:
            labels[same[0]] = label
            continue
        flat = {variant: variant.as_dict() for variant in same}
        names = list(dict.fromkeys(name for variant in same for name in flat[variant]))
        differing = [name for name in names
                     if len({repr(flat[v].get(name)) for v in same}) > 1]
        for variant in same:
            extra = [f"{name}={flat[variant].get(name)}" for name in differing
                     if name != schema.ARG_EPOCHS]
            if schema.ARG_EPOCHS in differing:
                extra.insert(0, f"{variant.epochs} epochs")
            labels[variant] = f"{label} ({', '.join(extra)})"
    return labels


def select_table(rule: SelectionRule, runs: Sequence[Run], num_envs: int) -> dict:
    """variant -> test_env -> trial_seed -> Choice, for the runs of one table."""
    selected: dict[Variant, dict[int, dict[int, Choice]]] = {}
    by_variant = group_runs(runs, lambda run: run.variant)
    for variant, variant_runs in by_variant.items():
        per_env = selected.setdefault(variant, {})
        by_trial = group_runs(variant_runs, lambda run: run.trial_seed)
        for test_env in range(num_envs):
            for trial_seed in sorted(by_trial):
                candidates = [r for r in by_trial[trial_seed] if test_env in r.test_envs]
                choice = rule.select(test_env, candidates) if candidates else None
                if choice is not None:
                    per_env.setdefault(test_env, {})[trial_seed] = choice
    return selected


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    if not values or any(value is None for value in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def _saved(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline <= 0:
        return None
    return 100 * (1 - value / baseline)


def build_row(variant: Variant, per_env: dict[int, dict[int, Choice]], num_envs: int) -> Row:
    trial_accs = {env: {seed: c.test_acc for seed, c in per_env.get(env, {}).items()}
                  for env in range(num_envs)}
    cells = [Cell.of([trial_accs[env][seed] for seed in sorted(trial_accs[env])])
             for env in range(num_envs)]
    means = [cell.mean for cell in cells]
    avg = None if any(m is None for m in means) else sum(means) / len(means)  # type: ignore
    choices = [per_env[env][seed] for env in sorted(per_env) for seed in sorted(per_env[env])]
    row = Row(variant, variant.base_label(), cells, avg, choices, trial_accs)
    energy_J = _mean_or_none([c.run.total_train_energy_J for c in choices])
    row.energy_kJ = None if energy_J is None else energy_J / 1000
    row.flops = _mean_or_none([c.run.total_train_flops for c in choices])
    if row.energy_kJ and avg is not None:
        row.acc_per_kWh = avg / (row.energy_kJ / 3600)
    if variant.adaptation is not None:
        row.adapt_energy_kJ, row.adapt_flops = mean_adaptation_cost([c.run.last for c in choices])
    return row


def build_table(rule: SelectionRule, key: TableKey, runs: Sequence[Run]) -> Table:
    num_envs = max(run.num_envs for run in runs)
    return assemble_table(key, env_names(key[0], num_envs), select_table(rule, runs, num_envs))


def build_adaptation_table(rule: AdaptationRule, key: TableKey, runs: Sequence[Run]) -> Table:
    """A DA table: a column per task (sources, targets), sorted; ``rule`` picks per
    (variant, task, trial seed) across hparams seeds."""
    tasks = sorted({run_domains(run) for run in runs})
    dataset_class = registered_dataset(key[0])
    labels = {}
    for run in runs:
        labels.setdefault(run_domains(run), task_label(run, dataset_class))
    selected: dict[Variant, dict[int, dict[int, Choice]]] = {}
    for variant, variant_runs in group_runs(runs, lambda run: run.variant).items():
        per_task = selected.setdefault(variant, {})
        by_trial = group_runs(variant_runs, lambda run: run.trial_seed)
        for index, task in enumerate(tasks):
            for trial_seed in sorted(by_trial):
                choice = rule.select([run for run in by_trial[trial_seed] if run_domains(run) == task])
                if choice is not None:
                    per_task.setdefault(index, {})[trial_seed] = choice
    return assemble_table(key, [labels[task] for task in tasks], selected, rule.name)


def assemble_table(key: TableKey, column_names: list[str], selected: dict,
                   selection_name: str | None = None) -> Table:
    """Rows (variant order and labels, cells, costs, savings) and controls of one table from
    its selections: variant -> column index -> trial seed -> Choice."""
    dataset, protocol, backbone, task = key
    num_columns = len(column_names)
    variants = sorted(selected, key=variant_order)
    labels = variant_labels(variants)
    rows = []
    for variant in variants:
        row = build_row(variant, selected[variant], num_columns)
        row.label = labels[variant]
        rows.append(row)
    by_variant = {row.variant: row for row in rows}
    for row in rows:
        baseline = by_variant.get(plain_baseline(row.variant))
        if baseline is not None and baseline is not row:
            row.energy_saved_pct = _saved(row.energy_kJ, baseline.energy_kJ)
            row.flops_saved_pct = _saved(row.flops, baseline.flops)
    table = Table(dataset, backbone, task, column_names, rows, protocol=protocol, selection_name=selection_name)
    table.controls = pair_controls(rows)
    return table


def plain_baseline(variant: Variant) -> Variant:
    """Same algorithm and epochs, every training mode off."""
    return Variant(algorithm=variant.algorithm, epochs=variant.epochs)


def build_averages(tables: Sequence[Table]) -> list[AveragesTable]:
    """Per (protocol, backbone, task): each variant's per-trial-seed mean over domains, per dataset.

    Epochs differ between datasets, so rows are matched without them; where a table holds
    one method at several lengths (a fewer-epochs control), the longest run stands for it.
    """
    result = []
    groups: dict[tuple[str, str, str], list[Table]] = {}
    for table in tables:
        groups.setdefault((table.protocol, table.backbone, table.task), []).append(table)
    for (protocol, backbone, task), group in groups.items():
        datasets = [table.dataset for table in group]
        per_table = [_longest_rows(table) for table in group]
        methods = sorted({m for rows in per_table for m in rows}, key=variant_order)
        labels = variant_labels(methods)
        rows = []
        for method in methods:
            cells = [Cell.of(_trial_averages(rows[method]) if method in rows else [])
                     for rows in per_table]
            means = [cell.mean for cell in cells]
            avg = None if any(m is None for m in means) else sum(means) / len(means)  # type: ignore
            rows.append((labels[method], cells, avg))
        result.append(AveragesTable(backbone, task, datasets, rows, protocol, group[0].selection_name))
    return result


def _longest_rows(table: Table) -> dict[Variant, Row]:
    """The table's rows keyed by variant without epochs, the longest run for each."""
    rows: dict[Variant, Row] = {}
    for row in table.rows:
        method = replace(row.variant, epochs=None)
        kept = rows.get(method)
        if kept is None or (row.variant.epochs or 0) > (kept.variant.epochs or 0):
            rows[method] = row
    return rows


def _trial_averages(row: Row) -> list[float]:
    """Per trial seed, the mean test accuracy over the test domains that seed has."""
    by_seed: dict[int, list[float]] = {}
    for env in sorted(row.trial_accs):
        for seed, acc in row.trial_accs[env].items():
            by_seed.setdefault(seed, []).append(acc)
    return [float(np.mean(by_seed[seed])) for seed in sorted(by_seed)]


def build_leaderboard(run_set: RunSet, rule: SelectionRule | AdaptationRule) -> Leaderboard:
    """Tables sorted by dataset, protocol, backbone, task; see the module docstring for the math.

    A DA rule refuses runs it cannot select (``check_recorded``); under DomainBed's rules
    DA runs are selected by the rule's DA reading, and left out with a warning where there
    is none (leave-one-domain-out).
    """
    warnings = list(run_set.warnings)
    if isinstance(rule, AdaptationRule):
        check_recorded(rule, run_set.runs)

    def table_key(run: Run) -> TableKey:
        return run.dataset, run.protocol, run.backbone, run.task

    adaptation = [run for run in run_set.runs if run.task == schema.DOMAIN_ADAPTATION]
    generalization = group_runs([run for run in run_set.runs if run.task != schema.DOMAIN_ADAPTATION], table_key)
    tables = [build_table(rule, key, runs) for key, runs in generalization.items()]
    reading = adaptation_rule(rule)
    if adaptation and reading is None:
        warnings.append(f"{len(adaptation)} domain adaptation runs left out: {rule.name} does not apply to them; "
                        "use --selection training_domain, oracle, source_val, entropy, im, snd, dev or target_oracle")
    elif adaptation:
        tables += [build_adaptation_table(reading, key, runs)
                   for key, runs in group_runs(adaptation, table_key).items()]
    tables = sorted((table for table in tables if table.rows),
                    key=lambda table: (table.dataset, table.protocol, table.backbone, table.task))
    return Leaderboard(rule, tables, build_averages(tables), run_set.num_records, len(run_set.runs), warnings)


def selected_runs(lb: Leaderboard) -> list[Run]:
    """The runs whose checkpoints the rule picked (each once, table order)."""
    runs: dict[str, Run] = {}
    for table in lb.tables:
        for row in table.rows:
            for choice in row.choices:
                runs.setdefault(choice.run.path, choice.run)
    return list(runs.values())

