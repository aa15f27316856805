"""``dgsamp sweep {launch,status,delete_incomplete}``: run a W&B sweep YAML without a W&B server.

    dgsamp sweep launch sweeps/pacs_mini.yaml --output_dir runs/mini --max_parallel 2
    dgsamp sweep status sweeps/pacs_mini.yaml --output_dir runs/mini
    dgsamp sweep delete_incomplete sweeps/pacs_mini.yaml --output_dir runs/mini [--delete]

``status`` and ``delete_incomplete`` must be given the same ``--count``, ``--seed`` and
``--set`` as ``launch``: they re-expand the sweep to know which directories belong to it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from dgsamp.errors import UserError
from dgsamp.sweep.jobs import JobState, write_job_record
from dgsamp.sweep.launchers import (
    SlurmOptions,
    run_locally,
    run_with_submitit_local,
    submit_to_slurm,
)
from dgsamp.sweep.plan import SweepPlan, parse_overrides, plan_sweep, set_incomplete_aside

LAUNCHERS = ("local", "submitit_local", "slurm")


def register(subparsers, argv: Sequence[str] = ()) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run a W&B sweep YAML locally or on Slurm (grid and random search)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="sweep_action", required=True, metavar="ACTION")

    launch = actions.add_parser("launch", help="start every job that is not done")
    _add_common(launch)
    launch.add_argument("--launcher", choices=LAUNCHERS, default="local")
    launch.add_argument("--max_parallel", type=int, default=1,
                        help="jobs at once (local: at most one per GPU when GPUs exist)")
    launch.add_argument("--wandb", choices=("disabled", "offline", "online"), default=None,
                        help="W&B mode for every job (default: whatever the sweep file says)")
    launch.add_argument("--slurm_partition", default=None)
    launch.add_argument("--slurm_time", type=int, default=60, metavar="MIN", help="minutes per job")
    launch.add_argument("--gpus_per_job", type=int, default=1)
    launch.add_argument("--cpus_per_job", type=int, default=None)
    launch.add_argument("--mem_gb", type=float, default=None)
    launch.add_argument("--dry_run", action="store_true", help="list the commands, start nothing")
    launch.set_defaults(func=launch_command)

    status = actions.add_parser("status", help="count done / running / incomplete / not launched jobs")
    _add_common(status)
    status.add_argument("--verbose", action="store_true", help="list every job with its state")
    status.set_defaults(func=status_command)

    clean = actions.add_parser(
        "delete_incomplete",
        help="move incomplete job directories to OUTPUT_DIR/_incomplete/<time>/ (or --delete them)",
    )
    _add_common(clean)
    clean.add_argument("--delete", action="store_true",
                       help="remove them for good instead of moving them aside")
    clean.set_defaults(func=delete_incomplete_command)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_file", help="a W&B sweep YAML (see sweeps/)")
    parser.add_argument("--output_dir", required=True, help="sweep directory: one sub-directory per job")
    parser.add_argument("--count", type=int, default=None,
                        help="random: number of draws (default: run_cap); grid: first N jobs only")
    parser.add_argument("--seed", type=int, default=0, help="random: seed of the draws")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="fix a parameter for every job, e.g. --set data_dir=/data (repeatable)")


def _plan(args) -> SweepPlan:
    return plan_sweep(args.sweep_file, args.output_dir, args.count, args.seed,
                      parse_overrides(args.overrides))


def launch_command(args) -> int:
    if args.max_parallel < 1:
        raise UserError(f"--max_parallel must be at least 1, got {args.max_parallel}")
    plan = _plan(args)
    for note in plan.notes:
        print(note)
    job_states = plan.job_states()
    todo = [job for job, state in job_states if state in (JobState.NOT_LAUNCHED, JobState.INCOMPLETE)]
    done = sum(state is JobState.DONE for _, state in job_states)
    running = sum(state is JobState.RUNNING for _, state in job_states)
    print(f"{plan.config.name}: {len(plan.jobs)} jobs, {done} done, "
          f"{running} running elsewhere, {len(todo)} to run")
    planned = [plan.planned(job, args.wandb) for job in todo]
    if args.dry_run:
        for job in planned:
            print("dgsamp train " + " ".join(job.argv))
        return 0
    for job, ready in zip(todo, planned):
        write_job_record(ready.job_dir, job.argv, str(args.sweep_file))
    submitit_folder = Path(args.output_dir) / "_submitit"
    if args.launcher == "local":
        report = run_locally(planned, args.max_parallel)
    elif args.launcher == "submitit_local":
        report = run_with_submitit_local(planned, args.max_parallel, submitit_folder)
    else:
        options = SlurmOptions(args.slurm_partition, args.slurm_time, args.gpus_per_job,
                               args.cpus_per_job, args.mem_gb)
        report, slurm_ids = submit_to_slurm(planned, args.max_parallel, submitit_folder, options,
                                            plan.config.name)
        if slurm_ids:
            print(f"slurm job ids: {slurm_ids[0].split('_')[0]} (array of {len(slurm_ids)})")
    for line in report.lines():
        print(line)
    return 1 if report.failed else 0


def status_command(args) -> int:
    plan = _plan(args)
    states = plan.states()
    counts = ", ".join(f"{state.value} {len(states[state])}" for state in JobState)
    print(f"{plan.config.name}: {len(plan.jobs)} jobs: {counts}")
    if args.verbose:
        for state in JobState:
            for job in states[state]:
                print(f"{state.value:>12}  {plan.job_dir(job)}  {' '.join(job.argv)}")
    return 0


def delete_incomplete_command(args) -> int:
    plan = _plan(args)
    incomplete = plan.states()[JobState.INCOMPLETE]
    if not incomplete:
        print("no incomplete jobs")
        return 0
    for job in incomplete:
        print(f"incomplete: {plan.job_dir(job)}  {' '.join(job.argv)}")
    handled, aside = set_incomplete_aside(plan, delete=args.delete)
    where = "deleted" if aside is None else f"moved to {aside}"
    print(f"{len(handled)} incomplete job directories {where}")
    return 0
