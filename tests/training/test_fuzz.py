"""Hypothesis fuzzing: no command line and no sweep file produces a traceback.

Every input either works or ends in a ``UserError`` (one line, exit code 2) or argparse's
own ``SystemExit(0)`` for ``--help``/``--version``. Training itself is not fuzzed: the
``train`` fuzz stops after the parser and ``RunConfig`` validation, which is where every
flag is checked before any data or model is touched.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dgsamp.cli import build_parser, main
from dgsamp.config import RunConfig, resolve_run_config
from dgsamp.errors import UserError
from dgsamp.sweep.config import PARAMETER_KEYS, TOP_LEVEL_KEYS, load_sweep_config
from dgsamp.sweep.expand import expand_sweep

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def train_flags() -> list[str]:
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # argparse keeps subparsers here
    return sorted(s for action in train._actions for s in action.option_strings if s not in ("-h", "--help"))


TRAIN_FLAGS = train_flags()
FLOAT_TEXT = st.floats(allow_nan=True, allow_infinity=True).map(repr)
VALUES = st.one_of(
    st.integers(-10, 10).map(str),
    st.integers().map(str),
    FLOAT_TEXT,
    st.sampled_from([
        "nan", "inf", "-inf", "1e400", "0", "-1", "0.5", "true", "no", "", " ", "PACS", "ERM", "DANN",
        "RotatedMNIST", "mnist_cnn", "periodic", "random", "constant", "cosine", "{}", "[]", "{\"lr\": 0}",
        '{"lr": "x"}', '{"batch_size": 0}', '{"no_such": 1}', "null", "cuda", "cpu", "auto", "--", "-",
    ]),
    st.text(max_size=12),
)
TOKENS = st.one_of(
    st.sampled_from(TRAIN_FLAGS),
    st.tuples(st.sampled_from(TRAIN_FLAGS), VALUES).map(lambda fv: f"{fv[0]}={fv[1]}"),
    VALUES,
)
# A flag followed by a value most of the time, so the fuzz reaches RunConfig validation.
FLAG_AND_VALUE = st.tuples(st.sampled_from(TRAIN_FLAGS), VALUES).map(list)
TRAIN_ARGV = st.lists(st.one_of(FLAG_AND_VALUE, TOKENS.map(lambda t: [t])), max_size=8).map(
    lambda parts: ["train", *(token for part in parts for token in part)]
)


def parse_and_validate(argv: list[str]) -> RunConfig | None:
    """What ``dgsamp train ARGV`` does before it builds the Trainer; None for --help."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            args = build_parser().parse_args(argv)
            return resolve_run_config(args)
        except UserError as error:
            assert "\n" not in without_echoed_input(str(error), argv), str(error)
        except SystemExit as exit_:
            assert exit_.code in (0, None), (argv, exit_.code)  # --help / --version
    return None


def without_echoed_input(message: str, argv: list[str]) -> str:
    """``message`` minus the user's own tokens that hold a newline (messages may quote input)."""
    pieces = {*argv, *(token.split("=", 1)[1] for token in argv if "=" in token)}
    for piece in sorted((p for p in pieces if "\n" in p), key=len, reverse=True):
        message = message.replace(piece, "").replace(repr(piece), "")
    return message


def test_train_flags_and_values_never_traceback():
    @FUZZ
    @given(TRAIN_ARGV)
    def check(argv):
        config = parse_and_validate(argv)
        if config is not None:
            assert config.schedule.epochs >= 1 and 0 not in (config.hparams["batch_size"],)
            assert config.data.test_envs and len(config.data.test_envs) == len(set(config.data.test_envs))

    check()


MAIN_TOKENS = st.one_of(
    st.sampled_from(["list", "sweep", "status", "delete_incomplete", "launch", "algorithms", "datasets",
                     "backbones", "--filter", "--plugin", "--version", "--help", "-h", "--output_dir",
                     "--count", "--seed", "--set", "--verbose", "--dry_run", "--max_parallel"]),
    VALUES,
)


def test_main_never_tracebacks_outside_training(tmp_path, monkeypatch):
    """``dgsamp ARGV`` for every subcommand except ``train`` and ``leaderboard`` (which can reach
    the W&B API); the sweep files named do not exist in the empty working directory."""
    monkeypatch.chdir(tmp_path)

    @settings(FUZZ, derandomize=True)
    @example(["--plugin"])
    @example(["list", "--plugin", "no\nsuch.py"])
    @given(st.lists(MAIN_TOKENS, max_size=7).filter(lambda argv: "train" not in argv and "leaderboard" not in argv))
    def check(argv):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                code = main(argv)
            except SystemExit as exit_:  # --help, --version
                code = exit_.code or 0
        assert code in (0, 2), (argv, code, err.getvalue())
        assert "Traceback" not in err.getvalue()
        if code == 2:
            assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()

    check()


# ------------------------------------------------------------------ sweep YAML
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
SPEC = st.dictionaries(
    st.one_of(st.sampled_from(sorted(PARAMETER_KEYS | {"distribution", "parameters"})), st.text(max_size=6)),
    st.one_of(
        JSONISH,
        st.sampled_from(["uniform", "int_uniform", "log_uniform_values", "q_uniform", "normal",
                         "categorical", "constant", "beta", "bogus"]),
    ),
    max_size=4,
)
COMMANDS = st.one_of(
    st.just(["${env}", "${program}", "train", "${args}"]),
    st.lists(st.sampled_from(["${env}", "${program}", "train", "${args}", "${args_no_equals}",
                              "${interpreter}", "--epochs=1", "x"]), max_size=5),
    JSONISH,
)
SWEEPS = st.fixed_dictionaries(
    {
        "method": st.one_of(st.sampled_from(["grid", "random", "bayes", "custom", "hyperband"]), JSONISH),
        "parameters": st.one_of(
            st.dictionaries(st.one_of(st.sampled_from(["lr", "test_envs", "epochs"]), st.text(max_size=6)),
                            SPEC, max_size=3),
            JSONISH,
        ),
        "command": COMMANDS,
    },
    optional={
        "run_cap": st.one_of(st.integers(-2, 5), JSONISH),
        "name": JSONISH,
        "metric": JSONISH,
        **{key: JSONISH for key in ("program", "description", "early_terminate", "junk_key")},
    },
)


def load_or_user_error(path: Path) -> None:
    try:
        config = load_sweep_config(path)
    except UserError as error:
        assert "\n" not in str(error), str(error)
        return
    assert config.method in ("grid", "random", "bayes", "custom")
    assert isinstance(config.parameters, dict) and config.parameters
    assert "train" not in config.train_tokens


def test_sweep_loader_on_arbitrary_text_never_tracebacks(tmp_path):
    path = tmp_path / "sweep.yaml"

    @FUZZ
    @given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
    def check(content):
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        load_or_user_error(path)

    check()


def test_sweep_loader_on_arbitrary_yaml_structures_never_tracebacks(tmp_path):
    path = tmp_path / "sweep.yaml"

    @FUZZ
    @given(SWEEPS)
    def check(sweep):
        path.write_text(yaml.safe_dump(sweep, allow_unicode=True))
        load_or_user_error(path)

    check()


def test_fuzz_strategies_reach_valid_inputs():
    """The fuzz is not all noise: its pools hold real flags and a loadable sweep shape."""
    assert {"--dataset", "--gradsamp_period", "--lr", "--plugin"} <= set(TRAIN_FLAGS)
    config = parse_and_validate(["train", "--epochs", "2", "--lr=0.01", "--test_envs", "1", "2"])
    assert config is not None and config.hparams["lr"] == 0.01 and config.data.test_envs == (1, 2)
    assert {"method", "parameters", "command"} <= TOP_LEVEL_KEYS


def test_sweep_expansion_never_tracebacks(tmp_path):
    path = tmp_path / "sweep.yaml"
    command = ["${env}", "${program}", "train", "${args}"]

    @settings(FUZZ, derandomize=True)
    @example({"method": "random", "parameters": {"lr": {"min": 5, "max": 1}}, "command": command})
    @example({"method": "random", "command": command,
              "parameters": {"lr": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0}}})
    @given(SWEEPS)
    def check(sweep):
        path.write_text(yaml.safe_dump(sweep, allow_unicode=True))
        try:
            expand_sweep(load_sweep_config(path), count=2, seed=0)
        except UserError as error:
            assert "\n" not in str(error), str(error)

    check()
