"""The keys of a results.jsonl line and of summary.json, defined once.

Every writer (``records.py``, the W&B sink) and every reader (``runs.py``, the
leaderboard, the progress line, the figures) names a key through this module, never as
a string literal. DomainBed's key names are kept unchanged so its tools read dgsamp runs
and dgsamp's leaderboard reads DomainBed runs. docs/results-format.md documents the
same keys; a test checks that it mentions every one of :data:`RECORD_KEYS` and
:data:`SUMMARY_KEYS`.

Units: accuracies are fractions in [0, 1], energy is in joules (J), compute in counted
floating-point operations (FLOPs), time in wall-clock seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# ---------------------------------------------------------------- DomainBed's keys
ARGS = "args"
"""dict: every CLI argument of the run (``dataset``, ``test_envs``, mode flags, ...)."""
HPARAMS = "hparams"
"""dict: the resolved hyperparameters (``lr``, ``batch_size``, ...)."""
EPOCH = "epoch"
"""int: the 1-based trainer epoch just finished, the span since the previous evaluation
(DomainBed's records hold ``step / steps_per_epoch`` there, a float)."""
STEP = "step"
"""int: DomainBed's step, the 0-based index of the last update before the evaluation
(updates so far − 1; a non-backprop epoch advances it as if it had run)."""


def env_in_acc(env: int) -> str:
    """Key of domain ``env``'s accuracy on its in split (fraction in [0, 1])."""
    return f"env{env}_in_acc"


def env_out_acc(env: int) -> str:
    """Key of domain ``env``'s accuracy on its out split (fraction in [0, 1])."""
    return f"env{env}_out_acc"


def is_env_acc(key: str) -> bool:
    """Whether ``key`` is an ``env{i}_in_acc`` / ``env{i}_out_acc`` key."""
    head, _, tail = key.partition("_")
    return head.startswith("env") and head[3:].isdigit() and tail in ("in_acc", "out_acc")


def env_in_mpca(env: int) -> str:
    """Key of domain ``env``'s mean per-class accuracy on its in split (datasets whose
    ``ACCURACY`` is ``mean_per_class``, e.g. VisDA-2017; fraction in [0, 1])."""
    return f"env{env}_in_mpca"


def env_out_mpca(env: int) -> str:
    """Key of domain ``env``'s mean per-class accuracy on its out split (as ``env_in_mpca``)."""
    return f"env{env}_out_mpca"


def evaluated_envs(record: Mapping[str, Any]) -> list[int]:
    """Domains of a record with an ``env{i}_out_acc`` key, ascending (a domain-adaptation run
    evaluates only its sources and targets, so there can be gaps)."""
    envs = []
    for key in record:
        head, _, tail = key.partition("_")
        if tail == "out_acc" and head.startswith("env") and head[3:].isdigit():
            envs.append(int(head[3:]))
    return sorted(envs)


def count_envs(record: Mapping[str, Any]) -> int:
    """Number of domains of a record: consecutive ``env{i}_out_acc`` keys from 0."""
    count = 0
    while env_out_acc(count) in record:
        count += 1
    return count


# ---------------------------------------------------------------- args the leaderboard reads
ARG_DATASET = "dataset"
ARG_SOURCE = "source"
"""list[int] | None: DA's labelled source domains (``--source``); None: every non-test domain."""
ARG_TARGET = "target"
"""list[int] | None: DA's unlabeled target domains (= ``test_envs``); None in DG."""
ARG_TASK_LABEL = "task_label"
"""str | None: a DA task as tllib's tables name it, e.g. ``A→W`` (None in DG)."""
ARG_ALGORITHM = "algorithm"
ARG_TEST_ENVS = "test_envs"
ARG_HPARAMS_SEED = "hparams_seed"
ARG_TRIAL_SEED = "trial_seed"
ARG_EPOCHS = "epochs"
ARG_BACKBONE = "backbone"
ARG_TASK = "task"
DOMAIN_GENERALIZATION = "domain_generalization"
DOMAIN_ADAPTATION = "domain_adaptation"
"""The two values of ``args.task``."""
ARG_PROTOCOL = "protocol"
"""The ``--protocol`` preset (``domainbed2020``, ``domainbed2024``, ``dgsamp``); absent in
DomainBed's records and in dgsamp's from before presets."""
REQUIRED_ARGS = (ARG_DATASET, ARG_ALGORITHM, ARG_TEST_ENVS, ARG_HPARAMS_SEED, ARG_TRIAL_SEED)
"""The ``args`` entries a run needs to be placed in a leaderboard table."""

# ---------------------------------------------------------------- dgsamp's per-epoch keys
OOD_ACC = "ood_acc"
"""float: mean ``env{t}_in_acc`` over the test domains t (fraction)."""
SOURCE_VAL_ACC = "source_val_acc"
"""float (domain adaptation only): mean ``env{s}_out_acc`` over the source domains s."""
TARGET_ENTROPY = "target_entropy"
"""float (domain adaptation only): mean entropy (nats) of the softmax predictions on the
target's unlabeled data (``dgsamp.scores.mean_entropy``; lower is better)."""
TARGET_IM = "target_im"
"""float (domain adaptation only): information maximisation H(mean p) - mean H(p) on the
target's unlabeled data (``dgsamp.scores.information_maximization``; higher is better)."""
TARGET_SND = "target_snd"
"""float or null (domain adaptation only): soft neighbourhood density of the target's
softmax outputs (``dgsamp.scores.soft_neighborhood_density``; higher is better; null with
fewer than 2 target examples)."""
TARGET_DEV = "target_dev"
"""float or null (domain adaptation only): deep embedded validation risk from the
featurizer's outputs and the source validation cross-entropy
(``dgsamp.scores.deep_embedded_validation``; lower is better; null with fewer than 2
source validation examples)."""
ADAPTATION_SCORE_KEYS = (SOURCE_VAL_ACC, TARGET_ENTROPY, TARGET_IM, TARGET_SND, TARGET_DEV)
"""What a domain-adaptation run adds to every results line, for selection without target
labels; a domain-generalization run writes none of them."""
LOSS = "loss"
"""float or null: the main training loss averaged over the epoch (null: no backprop)."""
EPOCH_KIND = "epoch_kind"
"""str: ``backprop`` or a kind a training mode planned (e.g. ``gradsamp``)."""
BACKPROP = "backprop"
"""The epoch kind of an ordinary epoch (the value, same as ``dgsamp.modes.base.BACKPROP``)."""
TRAIN_ENERGY_J = "train_energy_J"
"""float or null: measured energy of the epoch's training phase (J); null if unmeasured."""
EVAL_ENERGY_J = "eval_energy_J"
"""float or null: measured energy of the epoch's evaluation (J); null if unmeasured."""
ENERGY_SOURCE = "energy_source"
"""str: the meter, ``nvml``, ``zeus``, ``rapl`` or ``unavailable``."""
TRAIN_FLOPS = "train_flops"
"""int: counted forward + backward FLOPs of the training phase (0 without backprop)."""
TRAIN_SECONDS = "train_seconds"
"""float: wall time of the training phase (s); in summary.json, the sum over epochs."""
EVAL_SECONDS = "eval_seconds"
"""float: wall time of the evaluation (s)."""
EPOCH_SECONDS = "epoch_seconds"
"""float: wall time of the whole epoch (s)."""
CUM_TRAIN_ENERGY_J = "cum_train_energy_J"
"""float or null: training energy summed over the epochs so far (J); null once any is."""
CUM_TRAIN_FLOPS = "cum_train_flops"
"""int: training FLOPs summed over the epochs so far."""
WEIGHTS = "weights"
"""str or null: the pretrained weights the backbone started from."""
EVALUATED_MODEL = "evaluated_model"
"""str: which model the line's accuracies are of: ``online`` (the trained weights) or the
name a training mode gives its own (``ema``, ``sma``, ``swad``)."""
ONLINE = "online"
"""The value of ``evaluated_model`` for the trained weights themselves."""

EPOCHS_SUFFIX = "_epochs"


def epochs_of_kind(kind: str) -> str:
    """Key of the running count of ``kind`` epochs, e.g. ``gradsamp_epochs`` (int)."""
    return f"{kind}{EPOCHS_SUFFIX}"


BACKPROP_EPOCHS = epochs_of_kind(BACKPROP)


def epoch_counters(record: Mapping[str, Any]) -> dict[str, int]:
    """The ``<kind>_epochs`` counters of a record (or summary), in record order."""
    return {key: value for key, value in record.items()
            if key.endswith(EPOCHS_SUFFIX) and key != ARG_EPOCHS}


def kind_of_counter(key: str) -> str:
    """``gradsamp_epochs`` -> ``gradsamp``."""
    return key[: -len(EPOCHS_SUFFIX)]


def mean_test_accuracy(record: Mapping[str, Any], test_envs: Iterable[int]) -> float:
    """Mean in-split accuracy of the test domains: the value of ``ood_acc`` (fraction)."""
    envs = list(test_envs)
    return sum(record[env_in_acc(env)] for env in envs) / len(envs)


def same_model_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records that evaluated the same kind of model as the last one (``evaluated_model``;
    all of them when the key is absent, as in DomainBed's records). Model selection picks
    among these, so a SWAD run is scored by its averaged model, never by an online epoch."""
    last = records[-1].get(EVALUATED_MODEL) if records else None
    return [record for record in records if record.get(EVALUATED_MODEL) == last]


def adaptation_domains(args: Mapping[str, Any], num_domains: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(sources, targets)`` of a domain-adaptation run: ``args["source"]`` and
    ``args["target"]`` when present, else every domain in ``range(num_domains)`` not in
    ``test_envs``, and ``test_envs``."""
    test_envs = tuple(int(env) for env in args.get(ARG_TEST_ENVS) or ())
    targets = tuple(int(env) for env in args.get(ARG_TARGET) or test_envs)
    if args.get(ARG_SOURCE) is not None:
        sources = tuple(int(env) for env in args[ARG_SOURCE])
    else:
        sources = tuple(env for env in range(num_domains) if env not in test_envs)
    return sources, targets


def source_validation_accuracy(record: Mapping[str, Any], sources: Iterable[int]) -> float:
    """Mean ``env{s}_out_acc`` over the source domains s (the value of ``source_val_acc``)."""
    envs = list(sources)
    return sum(record[env_out_acc(env)] for env in envs) / len(envs)


def training_domain_accuracy(record: Mapping[str, Any], test_envs: Iterable[int]) -> float:
    """Mean out-split accuracy of the training domains (DomainBed's training-domain
    validation accuracy of a record; fraction)."""
    source = (record.get(ARGS) or {}).get(ARG_SOURCE)
    excluded = set(test_envs)
    train_envs = [env for env in evaluated_envs(record) if env not in excluded]
    if source is not None:  # DA with --source: the sources are the training domains
        train_envs = [env for env in train_envs if env in set(source)]
    return sum(record[env_out_acc(env)] for env in train_envs) / len(train_envs)


RECORD_KEYS = (ARGS, HPARAMS, EPOCH, STEP, OOD_ACC, LOSS, EPOCH_KIND, TRAIN_ENERGY_J,
               EVAL_ENERGY_J, ENERGY_SOURCE, TRAIN_FLOPS, TRAIN_SECONDS, EVAL_SECONDS,
               EPOCH_SECONDS, CUM_TRAIN_ENERGY_J, CUM_TRAIN_FLOPS, BACKPROP_EPOCHS, EVALUATED_MODEL)
"""The fixed keys of a results line (besides ``env{i}_*_acc``, losses and mode fields)."""

# ---------------------------------------------------------------- summary.json
JOB_ID = "job_id"
"""str: hash of every setting that changes the numbers."""
EPOCHS = ARG_EPOCHS
"""int: epochs run (the last record's ``epoch``)."""
FINAL_OOD_ACC = "final_ood_acc"
"""float: ``ood_acc`` of the last epoch (fraction)."""
SELECTED_OOD_ACC = "selected_ood_acc"
"""float: ``ood_acc`` of the epoch the training-domain validation rule picks (fraction)."""
TOTAL_TRAIN_ENERGY_J = "total_train_energy_J"
"""float or null: training energy of the run (J)."""
TOTAL_EVAL_ENERGY_J = "total_eval_energy_J"
"""float or null: evaluation energy of the run (J); null if any epoch's is."""
TOTAL_TRAIN_FLOPS = "total_train_flops"
"""int: training FLOPs of the run."""
WALL_SECONDS = "wall_seconds"
"""float: the epochs' wall time summed (s)."""

SUMMARY_KEYS = (JOB_ID, EPOCHS, FINAL_OOD_ACC, SELECTED_OOD_ACC, TOTAL_TRAIN_ENERGY_J,
                TOTAL_EVAL_ENERGY_J, ENERGY_SOURCE, TOTAL_TRAIN_FLOPS, BACKPROP_EPOCHS,
                WEIGHTS, TRAIN_SECONDS, WALL_SECONDS)
"""The keys of summary.json (plus one ``<kind>_epochs`` counter per mode epoch kind)."""

# ---------------------------------------------------------------- W&B history


def is_kind_epoch(kind: str) -> str:
    """W&B history key, 0/1: whether the epoch was a ``kind`` epoch (e.g. ``is_gradsamp_epoch``)."""
    return f"is_{kind}_epoch"


def best_training_domain_record(
    records: Sequence[Mapping[str, Any]], test_envs: Sequence[int]
) -> tuple[Mapping[str, Any], float]:
    """The record of one run with the best training-domain validation accuracy (mean
    ``env{i}_out_acc`` over the domains not in ``test_envs``; the earliest wins a tie),
    and that accuracy. The one implementation of the rule: the leaderboard applies it
    per run, ``summary.json``'s ``selected_ood_acc`` to the run just trained."""
    records = same_model_records(records)
    best, best_val = records[0], training_domain_accuracy(records[0], test_envs)
    for record in records[1:]:
        val = training_domain_accuracy(record, test_envs)
        if val > best_val:
            best, best_val = record, val
    return best, best_val
