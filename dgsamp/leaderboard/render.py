"""Render a :class:`~dgsamp.leaderboard.tables.Leaderboard` as markdown, LaTeX, CSV, JSON or
DomainBed's ``collect_results`` text.

Every rendering names the model-selection rule of every table. Accuracy cells read
``mean ± err`` in % with one decimal; a missing cell is "—" ("X" in the DomainBed text,
empty in CSV, null in JSON); a cost that was not measured is "n/a".
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dgsamp.errors import UserError
from dgsamp.leaderboard.adaptation_cost import adaptation_note
from dgsamp.leaderboard.controls import FEWER_EPOCHS, ControlRow, Difference
from dgsamp.leaderboard.tables import AveragesTable, Cell, Leaderboard, Row, Table

MISSING = "—"
UNMEASURED = "n/a"
COST_HEADERS = ["Energy (kJ)", "Energy saved", "FLOPs", "FLOPs saved", "Acc %/kWh"]
CONTROL_NAMES = {"skip": "skip", FEWER_EPOCHS: "fewer epochs"}


def fmt_cell(cell: Cell, pm: str = "±", missing: str = MISSING) -> str:
    if cell.mean is None:
        return missing
    return f"{cell.mean:.1f} {pm} {cell.err:.1f}"


def fmt_avg(avg: float | None, missing: str = MISSING) -> str:
    return missing if avg is None else f"{avg:.1f}"


def fmt_diff(diff: Difference, pm: str = "±") -> str:
    if diff.mean is None:
        return MISSING
    err = "?" if diff.err is None else f"{diff.err:.1f}"
    return f"{diff.mean:+.1f} {pm} {err} (n={diff.n})"


def cost_values(row: Row) -> list[str]:
    """Energy (kJ), energy saved, FLOPs, FLOPs saved, accuracy per kWh, as text."""
    return [
        UNMEASURED if row.energy_kJ is None else f"{row.energy_kJ:.2f}",
        MISSING if row.energy_saved_pct is None else f"{row.energy_saved_pct:.1f}%",
        UNMEASURED if row.flops is None else f"{row.flops:.2e}",
        MISSING if row.flops_saved_pct is None else f"{row.flops_saved_pct:.1f}%",
        UNMEASURED if row.acc_per_kWh is None else f"{row.acc_per_kWh:.1f}",
    ]


def rule_name(lb: Leaderboard, table: Table | AveragesTable) -> str:
    """The selection rule of ``table``: a DA table under DomainBed's rules names their DA reading."""
    return table.selection_name or lb.rule.name


def table_title(table: Table, lb: Leaderboard) -> str:
    task = "" if table.task == "domain_generalization" else f" · {table.task}"
    return (f"{table.dataset} · protocol {table.protocol} · backbone {table.backbone}{task} · "
            f"model selection: {rule_name(lb, table)}")


def control_label(control: ControlRow) -> str:
    kind = CONTROL_NAMES.get(control.kind, control.kind)
    if control.control_label is None:
        return f"{kind}: not found ({control.wanted})"
    return f"{kind}: {control.control_label}"


def intro(lb: Leaderboard) -> str:
    text = (
        f"{lb.num_runs} runs, {lb.num_records} records. Accuracy: test-domain accuracy (%), "
        "mean ± standard error over trial seeds (DomainBed); "
        f"{MISSING} where no run was selected; costs are means over the selected runs."
    )
    if any(table.task == "domain_adaptation" for table in lb.tables):
        text += (" Domain adaptation tables: a column per task (sources→targets), the target "
                 "accuracy at the selected evaluation point.")
    return text


# ---------------------------------------------------------------- sections

ACCURACY, COST, CONTROLS, AVERAGES = "accuracy", "cost", "controls", "averages"


@dataclass
class Section:
    """One table of a text rendering: its kind, title, header and rows of text cells."""

    kind: str
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


class ReportStyle:
    """Markdown and LaTeX: costs beside accuracy, a control's two labels in two columns."""

    pm, missing = "±", MISSING
    separate_costs = False

    def table_title(self, lb: Leaderboard, table: Table) -> str:
        return table_title(table, lb)

    def cost_title(self, lb: Leaderboard, table: Table) -> str:
        return table_title(table, lb)

    def controls_title(self, lb: Leaderboard, table: Table) -> str:
        return f"Controls (GradSamp − control, paired over trial seeds) · {table_title(table, lb)}"

    def averages_title(self, lb: Leaderboard, averages: AveragesTable) -> str:
        task = "" if averages.task == "domain_generalization" else f" · {averages.task}"
        return (f"Averages · protocol {averages.protocol} · backbone {averages.backbone}{task} · "
                f"model selection: {rule_name(lb, averages)}")

    def control_columns(self, control: ControlRow) -> tuple[list[str], list[str]]:
        return ["GradSamp variant", "Control"], [control.gradsamp_label, control_label(control)]


class DomainBedStyle(ReportStyle):
    """DomainBed's collect_results text: ``+/-`` and ``X``, costs in their own table (only
    when measured), a control pair in one column, DomainBed's titles."""

    pm, missing = "+/-", "X"
    separate_costs = True

    @staticmethod
    def _which(lb: Leaderboard, table: Table) -> str:
        shared = sum(1 for other in lb.tables if other.dataset == table.dataset) > 1
        return f"{table.dataset} ({table.protocol}, {table.backbone}, {table.task})" if shared else table.dataset

    def table_title(self, lb: Leaderboard, table: Table) -> str:
        return f"Dataset: {self._which(lb, table)}, model selection method: {rule_name(lb, table)}"

    def cost_title(self, lb: Leaderboard, table: Table) -> str:
        return f"Cost, dataset: {self._which(lb, table)}, model selection method: {rule_name(lb, table)}"

    def controls_title(self, lb: Leaderboard, table: Table) -> str:
        return (f"Controls (GradSamp - control), dataset: {self._which(lb, table)}, "
                f"model selection method: {rule_name(lb, table)}")

    def averages_title(self, lb: Leaderboard, averages: AveragesTable) -> str:
        which = "" if len(lb.averages) == 1 else f" ({averages.protocol}, {averages.backbone}, {averages.task})"
        return f"Averages{which}, model selection method: {rule_name(lb, averages)}"

    def control_columns(self, control: ControlRow) -> tuple[list[str], list[str]]:
        return ["Pair"], [f"{control.gradsamp_label} vs {control_label(control)}"]


def sections(lb: Leaderboard, style: ReportStyle) -> Iterator[Section]:
    """Every table of the leaderboard, in order, as text cells in ``style``."""
    pm, missing = style.pm, style.missing
    for table in lb.tables:
        accuracy = [[row.label, *(fmt_cell(c, pm, missing) for c in row.cells),
                     fmt_avg(row.avg, missing)] for row in table.rows]
        costs = [cost_values(row) for row in table.rows]
        header = ["Algorithm", *table.env_names, "Avg"]
        adapted = [adaptation_note(row.label, row.adapt_energy_kJ, row.adapt_flops, row.flops)
                   for row in table.rows if row.variant.adaptation is not None]
        if not style.separate_costs:
            yield Section(ACCURACY, style.table_title(lb, table), [*header, *COST_HEADERS],
                          [[*a, *c] for a, c in zip(accuracy, costs)], adapted)
        else:
            yield Section(ACCURACY, style.table_title(lb, table), header, accuracy, adapted)
            if any(row.energy_kJ is not None or row.flops is not None for row in table.rows):
                yield Section(COST, style.cost_title(lb, table), ["Algorithm", *COST_HEADERS],
                              [[row.label, *c] for row, c in zip(table.rows, costs)])
        if table.controls:
            rows, head = [], []
            for control in table.controls:
                head, labels = style.control_columns(control)
                rows.append([*labels, *(fmt_diff(d, pm) for d in [*control.diffs, control.avg])])
            notes = [f"{c.gradsamp_label}: {c.note}" for c in table.controls if c.note]
            yield Section(CONTROLS, style.controls_title(lb, table),
                          [*head, *table.env_names, "Avg"], rows, notes)
    for averages in lb.averages:
        rows = [[label, *(fmt_cell(c, pm, missing) for c in cells), fmt_avg(avg, missing)]
                for label, cells, avg in averages.rows]
        yield Section(AVERAGES, style.averages_title(lb, averages),
                      ["Algorithm", *averages.datasets, "Avg"], rows)


# ---------------------------------------------------------------- markdown

MARKDOWN_LEVEL = {ACCURACY: 2, COST: 2, CONTROLS: 3, AVERAGES: 2}


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def to_markdown(lb: Leaderboard) -> str:
    lines = [f"# Leaderboard · model selection: {lb.rule.name}", "", intro(lb), ""]
    for section in sections(lb, ReportStyle()):
        lines += [f"{'#' * MARKDOWN_LEVEL[section.kind]} {section.title}", "",
                  _md_row(section.header), _md_row(["---"] * len(section.header)),
                  *(_md_row(row) for row in section.rows), ""]
        if section.notes:
            lines += [*(f"- {note}" for note in section.notes), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- LaTeX

LATEX_COMMAND = {ACCURACY: "subsubsection*", COST: "subsubsection*", CONTROLS: "paragraph",
                 AVERAGES: "subsubsection*"}

_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "—": "---", "→": r"$\to$", "−": "$-$",
                  "·": r"$\cdot$", "±": r"$\pm$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(char, char) for char in text)


def _latex_tabular(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return " & ".join(cells) + r" \\"

    return [r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\toprule",
            line([r"\textbf{" + latex_escape(h) + "}" for h in header]), r"\midrule",
            *(line(row) for row in rows), r"\bottomrule", r"\end{tabular}"]


def to_latex(lb: Leaderboard) -> str:
    esc = latex_escape
    lines = [f"% dgsamp leaderboard, model selection: {lb.rule.name}", f"% {esc(intro(lb))}"]
    for section in sections(lb, ReportStyle()):
        rows = [[esc(cell) for cell in row] for row in section.rows]
        lines += ["", f"\\{LATEX_COMMAND[section.kind]}{{{esc(section.title)}}}",
                  r"\begin{center}", r"\adjustbox{max width=\textwidth}{%",
                  *_latex_tabular(section.header, rows), "}", r"\end{center}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- CSV (tidy)

CSV_FIELDS = ["selection", "section", "dataset", "protocol", "backbone", "task", "variant", "control",
              "column", "value", "err", "n"]


def _r(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def to_csv(lb: Leaderboard) -> str:
    """One line per number: section accuracy / cost / control / averages."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()

    def emit(section: str, table, variant: str, column: str, value, err=None, n=None,
             control: str = "", dataset: str | None = None) -> None:
        writer.writerow({
            "selection": lb.rule.key, "section": section,
            "dataset": dataset if dataset is not None else table.dataset,
            "protocol": table.protocol, "backbone": table.backbone, "task": table.task, "variant": variant,
            "control": control, "column": column,
            "value": "" if value is None else _r(value), "err": "" if err is None else _r(err),
            "n": "" if n is None else n,
        })

    for table in lb.tables:
        for row in table.rows:
            for name, cell in zip(table.env_names, row.cells):
                emit("accuracy", table, row.label, name, cell.mean, cell.err, cell.n)
            emit("accuracy", table, row.label, "Avg", row.avg)
            for name, value in [("energy_kJ", row.energy_kJ),
                                ("energy_saved_pct", row.energy_saved_pct),
                                ("flops", row.flops), ("flops_saved_pct", row.flops_saved_pct),
                                ("acc_per_kWh", row.acc_per_kWh), *_adaptation_costs(row)]:
                emit("cost", table, row.label, name, value)
        for control in table.controls:
            for name, diff in [*zip(table.env_names, control.diffs), ("Avg", control.avg)]:
                emit("control", table, control.gradsamp_label, name, diff.mean, diff.err,
                     diff.n, control=control_label(control))
    for averages in lb.averages:
        for label, cells, avg in averages.rows:
            for dataset, cell in zip(averages.datasets, cells):
                emit("averages", averages, label, dataset, cell.mean, cell.err, cell.n,
                     dataset="")
            emit("averages", averages, label, "Avg", avg, dataset="")
    return out.getvalue()


# ---------------------------------------------------------------- JSON


def _cell_json(name: str, cell: Cell | Difference) -> dict:
    return {"column": name, "mean": _r(cell.mean), "err": _r(cell.err), "n": cell.n}


def _row_json(table: Table, row: Row) -> dict:
    return {
        "label": row.label, "variant": row.variant.as_dict(),
        "cells": [_cell_json(n, c) for n, c in zip(table.env_names, row.cells)],
        "avg": _r(row.avg), "energy_kJ": _r(row.energy_kJ),
        "energy_saved_pct": _r(row.energy_saved_pct), "flops": _r(row.flops, 0),
        "flops_saved_pct": _r(row.flops_saved_pct), "acc_per_kWh": _r(row.acc_per_kWh),
        **dict((name, _r(value, 0 if name == "adapt_flops" else 6)) for name, value in _adaptation_costs(row)),
        "selected_runs": sorted({c.run.path for c in row.choices}),
    }


def _adaptation_costs(row: Row) -> list[tuple[str, float | None]]:
    """A test-time adaptation row's own cost (on top of training); nothing for other rows."""
    if row.variant.adaptation is None:
        return []
    return [("adapt_energy_kJ", row.adapt_energy_kJ), ("adapt_flops", row.adapt_flops)]


def _averages_json(averages: AveragesTable) -> dict:
    return {"protocol": averages.protocol, "backbone": averages.backbone, "task": averages.task,
            "datasets": averages.datasets,
            "rows": [{"label": label, "cells": [_cell_json(d, c) for d, c in
                                                zip(averages.datasets, cells)],
                      "avg": _r(avg)} for label, cells, avg in averages.rows]}


def to_json(lb: Leaderboard) -> str:
    tables = []
    for table in lb.tables:
        controls = [{"gradsamp": c.gradsamp_label, "kind": c.kind, "control": c.control_label,
                     "wanted": c.wanted, "note": c.note,
                     "diffs": [_cell_json(n, d) for n, d in zip(table.env_names, c.diffs)],
                     "avg": _cell_json("Avg", c.avg)} for c in table.controls]
        tables.append({"dataset": table.dataset, "protocol": table.protocol, "backbone": table.backbone,
                       "task": table.task, "environments": table.env_names,
                       "rows": [_row_json(table, row) for row in table.rows],
                       "controls": controls})
    data = {"selection": {"key": lb.rule.key, "name": lb.rule.name},
            "num_runs": lb.num_runs, "num_records": lb.num_records,
            "tables": tables, "averages": [_averages_json(a) for a in lb.averages],
            "warnings": lb.warnings}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- DomainBed text

DOMAINBED_COLWIDTH = {ACCURACY: 20, COST: 14, CONTROLS: 20, AVERAGES: 25}


def _domainbed_table(header: str, col_labels: list[str], rows: list[list[str]],
                     colwidth: int) -> list[str]:
    """DomainBed's plain-text table: a blank line, ``-------- header``, padded cells."""
    label_width = max([colwidth, *(len(row[0]) for row in rows)])

    def line(cells: list[str]) -> str:
        padded = [cells[0].ljust(label_width)[:label_width],
                  *(str(c).ljust(colwidth)[:colwidth] for c in cells[1:])]
        return "  ".join(padded) + " "

    return ["", f"-------- {header}", line(col_labels), *(line(row) for row in rows)]


def to_domainbed(lb: Leaderboard) -> str:
    """DomainBed's collect_results text; cost and control tables follow when measured."""
    lines = [f"Total records: {lb.num_records}"]
    for section in sections(lb, DomainBedStyle()):
        lines += _domainbed_table(section.title, section.header, section.rows,
                                  DOMAINBED_COLWIDTH[section.kind])
    return "\n".join(lines) + "\n"


FORMATTERS: dict[str, Callable[[Leaderboard], str]] = {
    "markdown": to_markdown, "latex": to_latex, "csv": to_csv, "json": to_json,
    "domainbed": to_domainbed,
}


def render(lb: Leaderboard, fmt: str) -> str:
    try:
        formatter = FORMATTERS[fmt]
    except KeyError:
        raise UserError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATTERS)}") \
            from None
    return formatter(lb)
