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
from collections.abc import Callable
from dataclasses import asdict

from dgsamp.errors import UserError
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


def table_title(table: Table, lb: Leaderboard) -> str:
    task = "" if table.task == "domain_generalization" else f" · {table.task}"
    return f"{table.dataset} · backbone {table.backbone}{task} · model selection: {lb.rule.name}"


def control_label(control: ControlRow) -> str:
    kind = CONTROL_NAMES.get(control.kind, control.kind)
    if control.control_label is None:
        return f"{kind}: not found ({control.wanted})"
    return f"{kind}: {control.control_label}"


def intro(lb: Leaderboard) -> str:
    return (
        f"{lb.num_runs} runs, {lb.num_records} records. Accuracy: test-domain accuracy (%), "
        "mean ± standard error over trial seeds (DomainBed); "
        f"{MISSING} where no run was selected; costs are means over the selected runs."
    )


# ---------------------------------------------------------------- markdown


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_md_row(header), _md_row(["---"] * len(header)), *(_md_row(r) for r in rows)]


def to_markdown(lb: Leaderboard) -> str:
    lines = [f"# Leaderboard · model selection: {lb.rule.name}", "", intro(lb), ""]
    for table in lb.tables:
        lines += [f"## {table_title(table, lb)}", ""]
        header = ["Algorithm", *table.env_names, "Avg", *COST_HEADERS]
        rows = [[row.label, *(fmt_cell(c) for c in row.cells), fmt_avg(row.avg),
                 *cost_values(row)] for row in table.rows]
        lines += [*_md_table(header, rows), ""]
        if table.controls:
            lines += [f"### Controls (GradSamp − control, paired over trial seeds) · "
                      f"{table_title(table, lb)}", ""]
            header = ["GradSamp variant", "Control", *table.env_names, "Avg"]
            rows = [[c.gradsamp_label, control_label(c), *(fmt_diff(d) for d in c.diffs),
                     fmt_diff(c.avg)] for c in table.controls]
            lines += [*_md_table(header, rows), ""]
            notes = [f"- {c.gradsamp_label}: {c.note}" for c in table.controls if c.note]
            lines += [*notes, ""] if notes else []
    for averages in lb.averages:
        lines += [f"## Averages · backbone {averages.backbone} · model selection: "
                  f"{lb.rule.name}", ""]
        header = ["Algorithm", *averages.datasets, "Avg"]
        rows = [[label, *(fmt_cell(c) for c in cells), fmt_avg(avg)]
                for label, cells, avg in averages.rows]
        lines += [*_md_table(header, rows), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- LaTeX

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

    def block(title: str, header: list[str], rows: list[list[str]], command: str) -> None:
        lines.extend(["", f"\\{command}{{{esc(title)}}}", r"\begin{center}",
                      r"\adjustbox{max width=\textwidth}{%",
                      *_latex_tabular(header, [[esc(cell) for cell in row] for row in rows]),
                      "}", r"\end{center}"])

    for table in lb.tables:
        block(table_title(table, lb), ["Algorithm", *table.env_names, "Avg", *COST_HEADERS],
              [[row.label, *(fmt_cell(c) for c in row.cells), fmt_avg(row.avg),
                *cost_values(row)] for row in table.rows], "subsubsection*")
        if table.controls:
            block(f"Controls (GradSamp − control, paired over trial seeds) · "
                  f"{table_title(table, lb)}",
                  ["GradSamp variant", "Control", *table.env_names, "Avg"],
                  [[c.gradsamp_label, control_label(c), *(fmt_diff(d) for d in c.diffs),
                    fmt_diff(c.avg)] for c in table.controls], "paragraph")
    for averages in lb.averages:
        block(f"Averages · backbone {averages.backbone} · model selection: {lb.rule.name}",
              ["Algorithm", *averages.datasets, "Avg"],
              [[label, *(fmt_cell(c) for c in cells), fmt_avg(avg)]
               for label, cells, avg in averages.rows], "subsubsection*")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- CSV (tidy)

CSV_FIELDS = ["selection", "section", "dataset", "backbone", "task", "variant", "control",
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
            "backbone": table.backbone, "task": table.task, "variant": variant,
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
                                ("acc_per_kWh", row.acc_per_kWh)]:
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
        "label": row.label, "variant": asdict(row.variant),
        "cells": [_cell_json(n, c) for n, c in zip(table.env_names, row.cells)],
        "avg": _r(row.avg), "energy_kJ": _r(row.energy_kJ),
        "energy_saved_pct": _r(row.energy_saved_pct), "flops": _r(row.flops, 0),
        "flops_saved_pct": _r(row.flops_saved_pct), "acc_per_kWh": _r(row.acc_per_kWh),
        "selected_runs": sorted({c.run.path for c in row.choices}),
    }


def _averages_json(averages: AveragesTable) -> dict:
    return {"backbone": averages.backbone, "task": averages.task,
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
        tables.append({"dataset": table.dataset, "backbone": table.backbone,
                       "task": table.task, "environments": table.env_names,
                       "rows": [_row_json(table, row) for row in table.rows],
                       "controls": controls})
    data = {"selection": {"key": lb.rule.key, "name": lb.rule.name},
            "num_runs": lb.num_runs, "num_records": lb.num_records,
            "tables": tables, "averages": [_averages_json(a) for a in lb.averages],
            "warnings": lb.warnings}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- DomainBed text


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
    name = lb.rule.name
    lines = [f"Total records: {lb.num_records}"]
    per_dataset: dict[str, int] = {}
    for table in lb.tables:
        per_dataset[table.dataset] = per_dataset.get(table.dataset, 0) + 1
    for table in lb.tables:
        which = table.dataset
        if per_dataset[table.dataset] > 1:
            which += f" ({table.backbone}, {table.task})"
        rows = [[row.label, *(fmt_cell(c, "+/-", "X") for c in row.cells),
                 fmt_avg(row.avg, "X")] for row in table.rows]
        lines += _domainbed_table(f"Dataset: {which}, model selection method: {name}",
                                  ["Algorithm", *table.env_names, "Avg"], rows, 20)
        if any(row.energy_kJ is not None or row.flops is not None for row in table.rows):
            rows = [[row.label, *cost_values(row)] for row in table.rows]
            lines += _domainbed_table(f"Cost, dataset: {which}, model selection method: "
                                      f"{name}", ["Algorithm", *COST_HEADERS], rows, 14)
        if table.controls:
            rows = [[f"{c.gradsamp_label} vs {control_label(c)}",
                     *(fmt_diff(d, "+/-") for d in [*c.diffs, c.avg])] for c in table.controls]
            lines += _domainbed_table(f"Controls (GradSamp - control), dataset: {which}, "
                                      f"model selection method: {name}",
                                      ["Pair", *table.env_names, "Avg"], rows, 20)
    for averages in lb.averages:
        which = "" if len(lb.averages) == 1 else f" ({averages.backbone}, {averages.task})"
        rows = [[label, *(fmt_cell(c, "+/-", "X") for c in cells), fmt_avg(avg, "X")]
                for label, cells, avg in averages.rows]
        lines += _domainbed_table(f"Averages{which}, model selection method: {name}",
                                  ["Algorithm", *averages.datasets, "Avg"], rows, 25)
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
