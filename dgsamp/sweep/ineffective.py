"""Sweep parameters that only some jobs use: dropped where they have no effect.

A grid often crosses a flag with values under which it does nothing (``gradsamp_period``
with ``gradsamp: [off, periodic]``). ``dgsamp train`` refuses such a flag typed by hand
(``--gradsamp_period has no effect without --gradsamp periodic``); in a sweep the flag is
taken out of the jobs where that is the only objection, and each job is checked again
without it. A job's identity (its argv, hence its directory) is then free of the dropped
flag, so two jobs that differ only in it are one job. A flag that has no effect in every
job, or any other objection of ``dgsamp train``, still refuses the sweep.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from dgsamp.errors import UserError
from dgsamp.sweep.expand import SweepJob

NO_EFFECT = re.compile(r"^--(?P<flag>\w+)\b.*? has no effect(?: (?P<why>[^;]*))?")


@dataclass
class Dropped:
    """Which flags were taken out of how many jobs, and the first reason ``dgsamp train`` gave."""

    counts: Counter = field(default_factory=Counter)
    reasons: dict[str, str] = field(default_factory=dict)

    def lines(self, total: int) -> list[str]:
        """``dropped --gradsamp_period from 3 of 6 jobs where it has no effect without --gradsamp periodic``."""
        return [f"dropped --{flag} from {count} of {total} jobs where it has no effect {self.reasons[flag]}".rstrip()
                for flag, count in self.counts.items()]


def without_flag(argv: tuple[str, ...], flag: str) -> tuple[str, ...]:
    """``argv`` minus ``--flag=value``, ``--flag value`` and a bare ``--flag``."""
    kept: list[str] = []
    tokens = list(argv)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.startswith(f"--{flag}="):
            index += 1
            continue
        if token == f"--{flag}":
            has_value = index + 1 < len(tokens) and not tokens[index + 1].startswith("--")
            index += 2 if has_value else 1
            continue
        kept.append(token)
        index += 1
    return tuple(kept)


def check_job(job: SweepJob, dropped: Dropped) -> SweepJob:
    """``job`` as ``dgsamp train`` accepts it, ineffective flags dropped; UserError otherwise."""
    from dgsamp.config import parse_run_config

    argv = job.argv
    params = dict(job.params)
    while True:
        try:
            parse_run_config(list(argv))
            return job if argv == job.argv else replace(job, argv=argv, params=params)
        except UserError as error:
            match = NO_EFFECT.match(str(error))
            shorter = without_flag(argv, match["flag"]) if match else argv
            if shorter == argv:
                raise
            dropped.counts[match["flag"]] += 1
            dropped.reasons.setdefault(match["flag"], (match["why"] or "").strip())
            params.pop(match["flag"], None)
            argv = shorter


def drop_ineffective_flags(jobs: list[SweepJob], sweep_file: str | Path) -> tuple[list[SweepJob], list[str]]:
    """The jobs with flags that have no effect in them dropped (duplicates merged, first kept),
    and one summary line per dropped flag. Refuses, in one line, a job ``dgsamp train`` would
    refuse for another reason, and a flag that has no effect in any job."""
    from dgsamp.config.parser import load_plugins

    for job in jobs:  # plugin files named by the jobs register their hparam flags first
        load_plugins(job.argv)
    dropped = Dropped()
    checked: dict[tuple[str, ...], SweepJob] = {}
    for job in jobs:
        try:
            kept = check_job(job, dropped)
        except UserError as error:
            raise UserError(f"{sweep_file}: job {' '.join(job.argv)} is rejected by dgsamp train: {error}") from None
        checked.setdefault(kept.argv, kept)
    everywhere = [flag for flag, count in dropped.counts.items() if count == len(jobs)]
    if everywhere:
        flag = everywhere[0]
        raise UserError(f"{sweep_file}: --{flag} has no effect in any job ({dropped.reasons[flag]}); "
                        f"remove the parameter {flag} or add what it needs")
    return list(checked.values()), dropped.lines(len(jobs))
