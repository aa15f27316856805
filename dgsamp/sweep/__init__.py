"""Sweeps without a W&B server: expand a W&B sweep YAML and run its jobs.

config.py   load and check the YAML          expand.py    grid / random jobs
jobs.py     job directories, locks, states   plan.py      a sweep's jobs under one directory
launchers.py  local processes, submitit (local, Slurm)
"""
