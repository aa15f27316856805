"""A results line checked against the results schema (``dgsamp.tracking.schema``) as it is read.

A line the leaderboard or ``dgsamp ensemble`` cannot use as it stands is named, with why, and
skipped; the other lines of its run still count. Checked, for what the readers use:

- ``args``: a dict with ``dataset`` and ``algorithm`` strings, ``hparams_seed`` and
  ``trial_seed`` integers, ``test_envs`` a non-empty list of integers, each a domain the
  line reports an accuracy for (``env{t}_out_acc``);
- ``step``: an integer;
- every ``env{i}_in_acc`` / ``env{i}_out_acc``: a number in [0, 1] (not NaN, not a string);
- ``ood_acc``, when present and not null: a finite number.

DomainBed's own results lines pass: they hold the same keys with the same types.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dgsamp.tracking import schema


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _args_problem(args: Any, record: Mapping[str, Any]) -> str | None:
    if not isinstance(args, dict):
        return f"'{schema.ARGS}' is not a JSON object"
    for key in (schema.ARG_DATASET, schema.ARG_ALGORITHM):
        if key in args and not isinstance(args[key], str):
            return f"args.{key} is {args[key]!r}, not a name"
    for key in (schema.ARG_HPARAMS_SEED, schema.ARG_TRIAL_SEED):
        if key in args and not _is_int(args[key]):
            return f"args.{key} is {args[key]!r}, not an integer"
    if schema.ARG_TEST_ENVS in args:
        test_envs = args[schema.ARG_TEST_ENVS]
        if not isinstance(test_envs, list) or not test_envs or not all(_is_int(env) for env in test_envs):
            return f"args.{schema.ARG_TEST_ENVS} is {test_envs!r}, not a list of domain indices"
        reported = [env for env in test_envs if schema.env_out_acc(env) not in record]
        if reported:
            return f"args.{schema.ARG_TEST_ENVS} names domain {reported[0]}, which the line has no accuracy for"
    return None


def record_problem(record: Mapping[str, Any]) -> str | None:
    """Why ``record`` cannot be used, in a few words; None when it can."""
    if schema.ARGS in record:
        problem = _args_problem(record[schema.ARGS], record)
        if problem:
            return problem
    if schema.STEP in record and not _is_int(record[schema.STEP]):
        return f"'{schema.STEP}' is {record[schema.STEP]!r}, not an integer"
    for key, value in record.items():
        if schema.is_env_acc(key) and not (_is_number(value) and 0.0 <= value <= 1.0):
            return f"'{key}' is {value!r}, not an accuracy in [0, 1]"
    ood = record.get(schema.OOD_ACC)
    if ood is not None and not (_is_number(ood) and math.isfinite(ood)):
        return f"'{schema.OOD_ACC}' is {ood!r}, not a number"
    return None
