"""Expand a sweep into jobs: grid (every combination) or seeded random draws.

Each job is the argument list of ``dgsamp train`` formatted exactly as ``wandb agent``
formats it (``${args}`` -> ``--name=value`` with Python's ``str(value)``), so one YAML runs
the same commands under a W&B server and under ``dgsamp sweep launch``.

Random search draws every parameter, in file order, from ``numpy.random.default_rng(seed)``.
W&B's distributions (x ~ U means uniform):

    int_uniform           x ~ U{min, ..., max}
    uniform               x ~ U[min, max]             q_uniform: round(x / q) * q
    log_uniform           x = exp(u), u ~ U[min, max]
    log_uniform_values    x = exp(u), u ~ U[log min, log max]    (q_ variant rounds)
    normal / log_normal   x ~ N(mu, sigma^2) / x = exp(N(mu, sigma^2))  (q_ variants round)
    beta                  x ~ Beta(a, b)              q_beta rounds
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dgsamp.errors import UserError
from dgsamp.sweep.config import SweepConfig
from dgsamp.sweep.jobs import job_id_of

CONTINUOUS = (
    "int_uniform", "uniform", "q_uniform", "log_uniform", "log_uniform_values",
    "q_log_uniform_values", "normal", "q_normal", "log_normal", "q_log_normal", "beta", "q_beta",
)


@dataclass(frozen=True)
class SweepJob:
    """One run of the sweep: its ``dgsamp train`` flags and the hash that names its directory."""

    argv: tuple[str, ...]
    params: dict[str, Any]

    @property
    def job_id(self) -> str:
        return job_id_of(self.argv)


def expand_sweep(config: SweepConfig, count: int | None = None, seed: int = 0) -> list[SweepJob]:
    """The sweep's distinct jobs in a stable order (duplicate random draws collapse)."""
    if config.method in ("bayes", "custom"):
        raise UserError(
            f"{config.path}: method '{config.method}' chooses each run from earlier results and needs "
            f"a W&B server: run `wandb sweep {config.path}` then `wandb agent <sweep id>`"
        )
    if count is not None and count < 1:
        raise UserError(f"--count must be at least 1, got {count}")
    if config.method == "grid":
        points = grid_points(config.parameters, config.path)
        if count is not None:
            points = points[:count]
    else:
        count = count if count is not None else config.run_cap
        if count is None:
            raise UserError(f"{config.path}: a random sweep needs --count N (or run_cap: N in the file)")
        points = random_points(config.parameters, count, seed)
    jobs: dict[tuple[str, ...], SweepJob] = {}
    for point in points:
        argv = tuple(train_argv(config.train_tokens, point))
        jobs.setdefault(argv, SweepJob(argv=argv, params=point))
    return list(jobs.values())


def grid_points(parameters: dict[str, dict], source: object = "sweep") -> list[dict[str, Any]]:
    """Every combination of the ``value``/``values`` parameters (last parameter varies fastest)."""
    axes = []
    for name, spec in parameters.items():
        if "value" in spec:
            axes.append([spec["value"]])
        elif "values" in spec and "probabilities" not in spec:
            axes.append(list(spec["values"]))
        else:
            raise UserError(
                f"{source}: grid search needs 'value' or 'values' for every parameter; "
                f"'{name}' is a distribution (use method: random)"
            )
    names = list(parameters)
    return [dict(zip(names, combination)) for combination in itertools.product(*axes)]


def random_points(parameters: dict[str, dict], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` independent draws of every parameter, reproducible from ``seed``."""
    if count < 1:
        raise UserError(f"--count must be at least 1, got {count}")
    rng = np.random.default_rng(seed)
    return [{name: checked_sample(name, spec, rng) for name, spec in parameters.items()} for _ in range(count)]


def checked_sample(name: str, spec: dict[str, Any], rng: np.random.Generator) -> Any:
    """``sample`` with numeric mistakes in the spec (min > max, sigma < 0, ...) as UserErrors."""
    try:
        return sample(name, spec, rng)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError) as error:
        raise UserError(f"parameter '{name}': cannot draw from {spec}: {error}") from None


def sample(name: str, spec: dict[str, Any], rng: np.random.Generator) -> Any:
    """One draw of one parameter; ints stay ints, floats become Python floats."""
    kind = distribution_of(name, spec)
    if kind == "constant":
        return spec["value"]
    if kind == "categorical":
        return spec["values"][int(rng.integers(len(spec["values"])))]
    if kind == "categorical_w_probabilities":
        probabilities = np.asarray(spec["probabilities"], dtype=float)
        if len(probabilities) != len(spec["values"]) or not math.isclose(probabilities.sum(), 1.0):
            raise UserError(f"parameter '{name}': probabilities must match values and sum to 1")
        return spec["values"][int(rng.choice(len(probabilities), p=probabilities))]
    if kind == "int_uniform":
        return int(rng.integers(int(spec["min"]), int(spec["max"]) + 1))
    low, high = spec.get("min"), spec.get("max")
    mu, sigma = float(spec.get("mu", 0.0)), float(spec.get("sigma", 1.0))
    draw: float
    if kind in ("uniform", "q_uniform"):
        draw = rng.uniform(low, high)
    elif kind == "log_uniform":
        draw = math.exp(rng.uniform(low, high))
    elif kind in ("log_uniform_values", "q_log_uniform_values"):
        if low <= 0:
            raise UserError(f"parameter '{name}': log_uniform_values needs min > 0")
        draw = math.exp(rng.uniform(math.log(low), math.log(high)))
    elif kind in ("normal", "q_normal"):
        draw = rng.normal(mu, sigma)
    elif kind in ("log_normal", "q_log_normal"):
        draw = math.exp(rng.normal(mu, sigma))
    else:  # beta, q_beta
        draw = rng.beta(float(spec.get("a", 1.0)), float(spec.get("b", 1.0)))
    if kind.startswith("q_"):
        q = float(spec.get("q", 1.0))
        draw = round(draw / q) * q
        return int(draw) if q.is_integer() else float(draw)
    return float(draw)


def distribution_of(name: str, spec: dict[str, Any]) -> str:
    """W&B's rule: explicit ``distribution``, else inferred from value/values/min-max types."""
    if "distribution" in spec:
        kind = spec["distribution"]
        if kind == "constant" and "value" in spec:
            return kind
        if kind in ("categorical", "categorical_w_probabilities") and "values" in spec:
            return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
        if kind in CONTINUOUS:
            needed = {"a", "b"} if "beta" in kind else set() if "normal" in kind else {"min", "max"}
            if not needed <= set(spec):
                raise UserError(f"parameter '{name}': distribution {kind} needs {sorted(needed)}")
            return kind
        raise UserError(
            f"parameter '{name}': distribution {kind!r} is not supported by dgsamp sweep launch; "
            f"use one of constant, categorical, categorical_w_probabilities, {', '.join(CONTINUOUS)}"
        )
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if isinstance(spec.get("min"), int) and isinstance(spec.get("max"), int):
        return "int_uniform"
    return "uniform"


def train_argv(train_tokens: tuple[str, ...], point: dict[str, Any]) -> list[str]:
    """Replace the args macro in ``train_tokens`` by ``point`` formatted as W&B formats it."""
    argv: list[str] = []
    for token in train_tokens:
        if token == "${args}":
            argv += [f"--{name}={value}" for name, value in point.items()]
        elif token == "${args_no_equals}":
            for name, value in point.items():
                argv += [f"--{name}", str(value)]
        elif token == "${args_no_boolean_flags}":
            for name, value in point.items():
                if value is True:
                    argv.append(f"--{name}")
                elif value is not False:
                    argv.append(f"--{name}={value}")
        else:
            argv.append(token)
    return argv


def describe(job: SweepJob) -> str:
    """A short one-line label of a job for listings: its parameters as JSON."""
    return json.dumps(job.params, sort_keys=False, default=str)
