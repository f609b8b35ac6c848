"""Every bad command line gets one line: a property test over every subcommand, run in-process.

For each subcommand (train ppo, train ppo --resume, train dqn, eval, plot, list, bandit, tabular,
es --problem, es --env-id) hypothesis starts from a small, valid command line (tiny budgets,
everything written under a fresh temporary directory) and adds one or two hostile flags: numbers
at the extremes, NaN, infinities, negatives, 0, huge integers, strings, unicode, empty strings and
bad paths (missing, a file where a directory is expected, under /proc, too long). The flags are
read from the parser itself, so a new flag is covered the day it is added. ``rlcanon.cli.main``
must then either succeed (exit 0; any JSON it prints is strict JSON, without NaN) or exit 2 with
exactly one ``rlcanon...`` line on stderr and no traceback; any other exception escaping ``main``
fails. Nothing may be written into the working directory (an empty path must not mean ".").

Budget-like flags (counts that multiply the work: episodes, generations, workers, ...) draw only
invalid values or small valid ones, so no example trains for long. Values are drawn from fixed pools,
not free numbers: the interesting cases are the extremes, and pools keep the run time predictable.

Lines that rlcanon prints as it goes (``rlcanon: note: ...``, each one line: "the budget was rounded
up to 96 steps") may come before the error line; the error is still the one, last line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rlcanon.cli import main

# ---- running the CLI in-process ----


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_cli(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``rlcanon ARGV`` run in-process, in ``cwd``. Exceptions
    other than SystemExit propagate: the test fails on them."""
    out, err = io.StringIO(), io.StringIO()
    with _chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help, or a bad flag
            code = exc.code
    if code is None:
        code = 0
    assert isinstance(code, int), f"exit status {code!r} is not an integer"
    return code, out.getvalue(), err.getvalue()


def _no_constant(name: str) -> float:
    raise AssertionError(f"stdout has {name}, which is not JSON")


def assert_one_line_contract(argv: list[str], code: int, out: str, err: str) -> None:
    context = f"\nargv: {argv!r}\nexit: {code}\nstderr:\n{err}\nstdout (tail):\n{out[-2000:]}"
    assert "Traceback" not in err and "Traceback" not in out, context
    if code == 0:  # JSON results (all of stdout, or one line of it) are strict JSON: no NaN or Infinity
        try:
            json.loads(out, parse_constant=_no_constant)
        except json.JSONDecodeError:
            for line in out.splitlines():
                if line.startswith("{") and line.endswith("}"):
                    json.loads(line, parse_constant=_no_constant)
        return
    assert code == 2, context
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("rlcanon: note: ")]
    assert len(errors) == 1, context
    assert errors[0].startswith("rlcanon"), context
    assert lines[-1] == errors[0], context
    assert "nan" not in out.lower().split(), context  # a failed command prints no half result


# ---- the fixtures: one trained run to evaluate and plot ----


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-property")


@pytest.fixture(scope="module")
def trained(root: Path) -> Path:
    run = root / "trained"
    code, _, err = run_cli(["train", "ppo", *PPO_BASE, "--eval-interval", "32", "--run-dir", str(run)], root)
    assert code == 0, err
    return run


# ---- what the hostile flags draw from ----

# fmt: off
PPO_BASE = [
    "--env-id", "CartPole-v1", "--total-timesteps", "64", "--num-envs", "1", "--num-steps", "32",
    "--batch-size", "32", "--eval-episodes", "2", "--no-progress",
]
DQN_BASE = [
    "--env-id", "CartPole-v1", "--total-timesteps", "64", "--learning-starts", "16", "--batch-size", "8",
    "--buffer-size", "64", "--train-freq", "16", "--eval-episodes", "2", "--no-progress",
]
A2C_BASE = [
    "--env-id", "CartPole-v1", "--total-timesteps", "40", "--num-envs", "2", "--num-steps", "5",
    "--eval-episodes", "2", "--no-progress",
]
SAC_BASE = [
    "--env-id", "Pendulum-v1", "--total-timesteps", "80", "--learning-starts", "40", "--batch-size", "8",
    "--hidden", "8", "--eval-episodes", "1", "--no-progress",
]
TABULAR_BASE = ["q-learning", "--env-id", "FrozenLake-v1", "--episodes", "3", "--no-progress"]
ES_ENV_BASE = [
    "--env-id", "CartPole-v1", "--generations", "1", "--popsize", "4", "--eval-episodes", "2",
    "--no-progress",
]

INTS = [
    "-1", "0", "1", "2", "3", "-5", "1e30", "-1e30", str(10**40), "1.5", "nan", "inf", "-inf", "NaN",
    "abc", "", " ", "9" * 400, "1_0", "\u0663", "0x10", "1e-320", str(2**32 - 1), str(2**32), str(2**63),
]
FLOATS = [
    "0", "-1", "1", "0.5", "0.1", "-0.0", "1e-320", "1e30", "-1e30", "1e308", "-1e308", "1e999", "nan",
    "-nan", "inf", "-inf", "Infinity", "abc", "", str(10**40), "\u00bd",
]
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
JSON_VALUES = [
    "1", "0", "-1", "0.5", "1e30", "-1e30", "NaN", "Infinity", "-Infinity", "1e999", "true", "null",
    '"x"', "abc", "", "[1, 2]", "[-1, 1]", "[1, -1]", "{}", str(10**40),
]

# Budget-like flags: only invalid values or small valid ones (the work grows with the value).
# --workers > 1 would start a process pool, --max-evals 0 means the default 1e4 * dim.
SMALL_OR_INVALID = ["-1", "0", "1", "2", "3", "1e30", "-1e30", str(10**40), "nan", "inf", "abc", "", "1.5"]
BUDGET_FLAGS = {
    "--total-timesteps", "--num-envs", "--num-steps", "--update-epochs", "--gradient-steps", "--episodes",
    "--eval-episodes", "--generations", "--popsize", "--episodes-per-candidate", "--horizon", "--runs",
    "--arms", "--max-evals", "--dim", "--restarts", "--torch-threads", "--buffer-size", "--hidden",
    "--eval-interval", "--checkpoint-interval", "--n",
}
SPECIAL_VALUES: dict[str, list[str]] = {
    "--workers": ["-1", "0", "1", "1e30", str(10**40), "abc", "", "nan"],
    "--max-evals": [v for v in SMALL_OR_INVALID if v != "0"],
    "--backend": ["local", "nope", "", "LOCAL", "\u2603"],  # process / ray start worker processes
    "--env-id": [
        "CartPole-v1", "Pendulum-v1", "MountainCarContinuous-v0", "FrozenLake-v1", "CliffWalking-v1",
        "Taxi-v3", "rlcanon/Chain-v0", "rlcanon/GridWorld-v0", "nope-v0", "", " ", "\u00fcn\u00ef/\u2603-v0",
        "CartPole-v1\n",
    ],
    "--device": ["cpu", "auto", "cuda", "cuda:0", "gpu", "", "cuda:1e30", "cuda:-1", "mps", "meta"],
    "--activation": ["tanh", "relu", "", "gelu", "TANH"],
    "--metric": ["charts/episodic_return", "global_step", "", "nope", "eval/return_mean", "\n"],
    "--solvers": [
        "ucb1", "ucb1,thompson", "thompson,gaussian-thompson", ",", "", " ", "nope", "sw-ucb,ucb1,ucb1",
    ],
    "--kind": ["bernoulli", "gaussian", "poisson", ""],
    "--problem": ["sphere", "rosenbrock", "rastrigin", "linear-slope", "different-powers", "", "spear"],
    "--ray-address": ["", "auto", "localhost:1", "\u2603"],
    "--wrappers": [
        "nope", "", ":", "time-limit:max_episode_steps=-1", "time-limit:max_episode_steps=1e30",
        "observation-noise:std=nan", "observation-noise:std=1e30", "reward-scale:scale=1e30",
        "reward-scale:scale=-1", "reward-scale:scale", "action-repeat:repeat=0", "action-repeat:repeat=2",
        "flatten-observation",
        # not "clip-action" / "rescale-action": on a Discrete action space gymnasium raises a TypeError
        # that envs/wrappers.py passes through (test_box_wrapper_on_discrete_actions below)
    ],
    "--means": [
        "0.1,0.9", "0.5", "", ",", "nan,0.5", "inf,0.5", "-inf,0.5", "0.1,1.5", "-1,0.5", "1e30,0",
        "1e308,-1e308", "abc", "0.1,,0.9", "0.2," * 3,
    ],
}
PARAM_NAMES = [
    "epsilon", "decay_c", "initial_value", "step_size", "c", "refresh", "prior_alpha", "prior_beta",
    "sigma", "temperature", "alpha", "baseline", "gamma", "xi", "bound", "window", "nope", "",
]
OPTION_NAMES = [
    "popsize", "eigen_gap_factor", "bounds", "elite_fraction", "extra_noise", "learning_rate",
    "weight_decay", "beta1", "beta2", "seed", "sigma0", "nope", "",
]
# not "max_episode_steps": gym.make raises a ValueError for 0 that envs/factory.py passes through
# (test_env_kwargs_max_episode_steps_zero below)
ENV_KWARG_NAMES = ["foo", "\u00fcn\u00ef", "", "sutton_barto_reward", "is_slippery"]
# junk the parser sees besides flags: unknown flags, a flag without its value, stray words
JUNK = [["--nope"], ["--nope", "1"], ["stray"], ["--"], ["-"], ["-h"], ["--seed"], ["a\nb"], ["\u2603"]]

# Paths, by kind; made concrete inside each example's own temporary directory.
WRITE_PATHS = [
    "fresh", "fresh.png", "missing/deeper/x.png", "afile", "afile/x", "afile/x.png", "adir.png", "out.txt",
    "unicode \u00fcn\u00ef \u2603.png", "long", "newline", "empty", "proc-missing", "proc-file",
    "proc-under-file",
]
READ_PATHS = [*WRITE_PATHS, "trained", "trained-config"]
# fmt: on


def concrete_path(kind: str, tmp: Path, trained: Path) -> str:
    fixed = {
        "empty": "",
        "long": str(tmp / ("x" * 300 + ".png")),
        "newline": str(tmp / "a\nb.png"),
        "proc-missing": "/proc/nonexistent/x.png",
        "proc-file": "/proc/version",
        "proc-under-file": "/proc/version/x.png",
        "trained": str(trained),
        "trained-config": str(trained / "config.json"),
    }
    return fixed.get(kind, str(tmp / kind))


def option_actions(argv_prefix: list[str]) -> list[argparse.Action]:
    """The optional arguments of the subcommand ``argv_prefix`` (e.g. ["train", "ppo"])."""
    from rlcanon.cli.commands import build_parser

    parser: argparse.ArgumentParser = build_parser()
    for word in argv_prefix:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return [
        a
        for a in parser._actions
        if a.option_strings and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))
    ]


def _values_for(flag: str, action: argparse.Action) -> st.SearchStrategy[str]:
    if flag in SPECIAL_VALUES:
        return st.sampled_from(SPECIAL_VALUES[flag])
    if flag in BUDGET_FLAGS:
        return st.sampled_from(SMALL_OR_INVALID)
    type_name = getattr(action.type, "__name__", "")
    if type_name in ("_int", "int_flag", "int"):
        return st.sampled_from(INTS)
    if type_name in ("_float", "float_flag", "float"):
        return st.sampled_from(FLOATS)
    if action.choices:
        return st.sampled_from([*map(str, action.choices), ""]) | TEXT
    return TEXT


@st.composite
def hostile_flag(draw: st.DrawFn, actions: list[argparse.Action], tmp: Path, trained: Path) -> list[str]:
    """One flag with its value(s), or a bit of junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(JUNK))
    action = draw(st.sampled_from(actions))
    flags = [f for f in action.option_strings if f != "--progress"]  # a progress bar is not an error line
    flag = draw(st.sampled_from(flags)) if flags else action.option_strings[0]
    long_name = max(action.option_strings, key=len)
    if action.nargs == 0 or flag == "--progress":
        return [flag]
    if long_name in ("--run-dir", "--output", "--figure"):
        return [flag, concrete_path(draw(st.sampled_from(WRITE_PATHS)), tmp, trained)]
    if long_name == "--resume":  # never the shared trained run: resuming it would change it
        return [flag, concrete_path(draw(st.sampled_from([*WRITE_PATHS, "trained-config"])), tmp, trained)]
    if long_name in ("--param", "--option", "--env-kwargs"):
        names = {"--param": PARAM_NAMES, "--option": OPTION_NAMES, "--env-kwargs": ENV_KWARG_NAMES}[long_name]
        name = draw(st.sampled_from(names))
        value = draw(st.sampled_from(JSON_VALUES))
        return [flag, draw(st.sampled_from([f"{name}={value}", name, f"={value}"]))]
    values = _values_for(long_name, action)
    if action.nargs == "+":
        return [flag, *draw(st.lists(values, min_size=1, max_size=2))]
    value = draw(values)
    # "--flag=value" reaches the converter even for a value that starts with '-'
    return [f"{flag}={value}"] if flag.startswith("--") else [flag, value]


# ---- the subcommands: (parser path, base command line) ----


def base_argv(command: str, data: st.DataObject, tmp: Path, trained: Path) -> tuple[list[str], list[str]]:
    """(parser path, a small valid command line) for ``command``; positional arguments drawn."""
    from rlcanon.bandits import SOLVERS
    from rlcanon.es import PROBLEMS, STRATEGIES
    from rlcanon.tabular import METHODS

    run = ["--run-dir", str(tmp / "run")]
    if command == "train ppo":
        return ["train", "ppo"], ["train", "ppo", *PPO_BASE, *run]
    if command == "train dqn":
        return ["train", "dqn"], ["train", "dqn", *DQN_BASE, *run]
    if command == "train a2c":
        return ["train", "a2c"], ["train", "a2c", *A2C_BASE, *run]
    if command == "train sac":
        return ["train", "sac"], ["train", "sac", *SAC_BASE, *run]
    if command == "tabular --resume":  # a fresh small run, then its resume with hostile flags
        code, _, err = run_cli(["tabular", *TABULAR_BASE, *run], tmp)
        assert code == 0, err
        return ["tabular"], ["tabular", "q-learning", "--resume", str(tmp / "run"), "--no-progress"]
    if command == "train ppo --resume":  # a copy of the trained run: resuming may write to it
        copy = tmp / "resumed"
        shutil.copytree(trained, copy)
        return ["train", "ppo"], ["train", "ppo", "--resume", str(copy), "--no-progress"]
    if command == "eval":
        kind = data.draw(st.sampled_from(["trained"] * 3 + READ_PATHS), label="RUN_DIR")
        return ["eval"], ["eval", concrete_path(kind, tmp, trained), "--episodes", "2"]
    if command == "plot":
        kinds = data.draw(st.lists(st.sampled_from(["trained"] * 3 + READ_PATHS), min_size=1, max_size=2))
        dirs = [concrete_path(k, tmp, trained) for k in kinds]
        return ["plot"], ["plot", *dirs, "-o", str(tmp / "curve.png")]
    if command == "list":
        return ["list"], ["list"]
    if command == "bandit":
        solver = data.draw(st.sampled_from([*SOLVERS, "compare", "nope", ""]), label="SOLVER")
        return ["bandit"], ["bandit", solver, "--horizon", "20", "--runs", "2"]
    if command == "tabular":
        method = data.draw(st.sampled_from([*METHODS, "cliff-figure", "nope", ""]), label="METHOD")
        if method == "cliff-figure":
            figure = ["--runs", "1", "--episodes", "10", "-o", str(tmp / "cliff.png")]
            return ["tabular"], ["tabular", method, *figure]
        return ["tabular"], ["tabular", method, "--env-id", "FrozenLake-v1", "--episodes", "3", *run]
    strategy = data.draw(st.sampled_from([*STRATEGIES, "nope"]), label="STRATEGY")
    es_path = ["es", strategy if strategy in STRATEGIES else "cma-es"]  # one subcommand per strategy
    if command == "es --problem":
        problem = data.draw(st.sampled_from([*PROBLEMS, "spear", ""]), label="PROBLEM")
        return es_path, ["es", strategy, "--problem", problem, "--dim", "3", "--max-evals", "50"]
    assert command == "es --env-id"
    return es_path, ["es", strategy, *ES_ENV_BASE, *run]


COMMANDS = [
    "train ppo", "train ppo --resume", "train dqn", "train a2c", "train sac", "eval", "plot", "list",
    "bandit", "tabular", "tabular --resume", "es --problem", "es --env-id",
]  # fmt: skip
EXAMPLES = 120  # per subcommand: 1560 command lines, about a minute on two cores


@pytest.mark.parametrize("command", COMMANDS)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_bad_command_line_gets_one_line(
    command: str, data: st.DataObject, root: Path, trained: Path
) -> None:
    with tempfile.TemporaryDirectory(dir=root) as name:
        tmp = Path(name)
        (tmp / "afile").write_text("not a directory")
        (tmp / "adir.png").mkdir()
        cwd = tmp / "cwd"
        cwd.mkdir()
        path, argv = base_argv(command, data, tmp, trained)
        actions = option_actions(path)
        hostile = st.lists(hostile_flag(actions, tmp, trained), min_size=1, max_size=2)
        extra = data.draw(hostile, label="hostile")
        argv = argv + [word for flag in extra for word in flag]
        code, out, err = run_cli(argv, cwd)
        # --hypothesis-show-statistics: how many ran, and how many the parser or the checks refused
        event(
            "ran (exit 0)"
            if code == 0
            else "refused by the parser"
            if ": error: argument" in err or "(see --help)" in err
            else "refused by rlcanon"
        )
        assert_one_line_contract(argv, code, out, err)
        assert not os.listdir(cwd), f"{argv!r} wrote {os.listdir(cwd)} into the working directory"


# ---- regression tests: the cases from the issue, and the defects the property test found ----


@pytest.fixture
def cli(tmp_path: Path):
    """Run the CLI in-process in an empty working directory; return (exit status, stdout, stderr)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    def run(*argv: str) -> tuple[int, str, str]:
        code, out, err = run_cli(list(argv), cwd)
        assert_one_line_contract(list(argv), code, out, err)
        assert not os.listdir(cwd)
        return code, out, err

    return run


def refused(result: tuple[int, str, str], *needles: str) -> None:
    code, _, err = result
    assert code == 2, err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["es", "cma-es", "--problem", "sphere", "--seed=-1"],
        ["es", "cma-es", "--env-id", "CartPole-v1", "--seed=-1", "--generations", "1"],
        ["tabular", "q-learning", "--seed=-1", "--episodes", "3"],
        ["bandit", "ucb1", "--seed=-1", "--horizon", "20", "--runs", "2"],
    ],
)
def test_negative_seed_is_refused_by_name(cli, tmp_path, argv):
    refused(cli(*argv, *(["--run-dir", str(tmp_path / "r")] if argv[0] == "tabular" else [])), "seed", "-1")


def test_eval_refuses_negative_seed_and_episodes_without_nan_json(cli, trained):
    refused(cli("eval", str(trained), "--seed=-1"), "--seed -1", "[0, 4294967295]")
    code, out, err = cli("eval", str(trained), "--episodes=-1")
    refused((code, out, err), "--episodes -1", "[1, 100000]")
    assert out == ""  # no JSON, let alone NaN JSON
    code, out, _ = cli("eval", str(trained), "--episodes", "1")
    assert code == 0 and math.isfinite(json.loads(out, parse_constant=_no_constant)["eval_return_mean"])


def test_restarts_must_not_be_negative(cli):
    refused(cli("es", "cma-es", "--problem", "sphere", "--restarts=-1"), "--restarts -1", "[0, 20]")
    refused(cli("es", "cma-es", "--problem", "sphere", "--restarts", "1e30"), "--restarts")


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "ppo", "--seed", "1e30"], "seed="),
        (["train", "ppo", "--num-envs", "1e30"], "num_envs="),
        (["train", "ppo", "--hidden", "1e30"], "hidden="),
        (["train", "dqn", "--buffer-size", "1e30"], "buffer_size="),
        (["es", "cem", "--problem", "sphere", "--seed", "1e30"], "seed="),
        (["es", "cem", "--env-id", "CartPole-v1", "--hidden", "1e30"], "hidden="),
        (["tabular", "q-learning", "--seed", "1e30"], "seed="),
        (["bandit", "ucb1", "--seed", "1e30"], "--seed"),
        (["bandit", "ucb1", "--horizon", "1e30"], "--horizon"),
        (["bandit", "ucb1", "--runs", "1e30"], "--runs"),
        (["bandit", "ucb1", "--arms", "1e30"], "--arms"),
        (["es", "cma-es", "--problem", "sphere", "--dim", "1e30"], "--dim"),
        (["es", "cma-es", "--problem", "sphere", "--max-evals", "1e30"], "--max-evals"),
        (["es", "cma-es", "--problem", "sphere", "--popsize", "1e30"], "popsize="),
        (["tabular", "cliff-figure", "--runs", "1e30", "-o", "x.png"], "--runs"),
    ],
)
def test_huge_integers_are_refused_by_name(cli, argv, needle):
    refused(cli(*argv), needle, "is not allowed")


def test_hidden_and_batch_size_bounds(cli, tmp_path):
    refused(cli("train", "ppo", "--hidden=-1"), "hidden=-1", "[1, 65536]")
    refused(cli("train", "ppo", *PPO_BASE, "--batch-size", "1"), "batch_size=1", "[2, ")
    # DQN learns from single transitions: batch size 1 is valid, and the run stays finite
    code, out, err = cli("train", "dqn", *DQN_BASE, "--batch-size", "1", "--run-dir", str(tmp_path / "d"))
    assert code == 0, err
    assert json.loads(out.splitlines()[-1], parse_constant=_no_constant)["total_timesteps"] == 64


def test_cliff_figure_seeds_stay_in_range(cli):
    # run r of the figure is seeded with seed + r: the last run's seed must be valid too
    result = cli("tabular", "cliff-figure", "--seed", str(2**32 - 1), "--runs", "2", "-o", "c.png")
    refused(result, "--seed 4294967295", "at most 4294967294")


def test_tabular_bounds(cli):
    refused(cli("tabular", "q-learning", "--max-steps=-1"), "max_steps=-1")
    refused(cli("tabular", "q-learning", "--q-init", "nan"), "--q-init", "'nan' is not a finite number")
    refused(cli("tabular", "cliff-figure", "--episodes", "3", "-o", "c.png"), "--episodes 3", "[10, ")
    refused(cli("tabular", "q-learning", "--runs", "3"), "--runs does not apply")


def test_bandit_parameters_and_numbers(cli):
    base = ("--horizon", "20", "--runs", "2")
    refused(cli("bandit", "ucb1", "--param", "c=abc", *base), "c='abc'", "a number in [0, 1e+06]")
    refused(cli("bandit", "ucb1", "--param", "c=NaN", *base), "c=nan")
    refused(cli("bandit", "epsilon-greedy", "--param", "epsilon=nan", *base), "epsilon='nan'")
    refused(cli("bandit", "sw-ucb", "--param", "window=-1", *base), "window=-1", "integer")
    refused(cli("bandit", "softmax", "--param", "temperature=0", *base), "temperature=0")
    for flag in ("--drift", "--sigma"):
        for value in ("nan", "inf", "-inf"):
            result = cli("bandit", "ucb1", "--kind", "gaussian", f"{flag}={value}", *base)
            refused(result, flag, "not a finite number")
    refused(cli("bandit", "ucb1", "--drift=-1", *base), "--drift -1", "[0, 1e+09]")
    for means in ("nan,0.5", "inf,0.5", "0.5,-inf"):
        refused(cli("bandit", "ucb1", "--kind", "gaussian", f"--means={means}", *base), "--means", "finite")
    refused(cli("bandit", "ucb1", "--kind", "gaussian", "--means=1e300,0", *base), "means must lie in")
    refused(cli("bandit", "ucb1", "--sigma", "2", *base), "--sigma does not apply")
    refused(cli("bandit", "compare", "--param", "c=1", *base), "--param does not apply")
    refused(cli("bandit", "ucb1", "--horizon", "10000000", "--runs", "1000000"), "horizon * runs")


@pytest.mark.parametrize(
    "argv",
    [
        ["bandit", "compare", "--horizon", "20", "--runs", "2", "-o", "/proc/nonexistent/x.png"],
        ["bandit", "compare", "--horizon", "20", "--runs", "2", "-o", "/proc/version/x.png"],
        ["tabular", "cliff-figure", "--runs", "1", "--episodes", "10", "-o", "/proc/nonexistent/x.png"],
        ["es", "cma-es", "--problem", "rosenbrock", "--figure", "/proc/nonexistent/x.png"],
    ],
)
def test_unwritable_output_is_one_line(cli, argv):
    refused(cli(*argv), "/proc/")


def test_unwritable_plot_output_and_bad_suffix(cli, trained, tmp_path):
    refused(cli("plot", str(trained), "-o", "/proc/nonexistent/x.png"), "/proc/nonexistent")
    refused(cli("bandit", "compare", "--horizon", "20", "--runs", "2", "-o", str(tmp_path / "x.txt")), ".png")
    refused(cli("es", "cma-es", "--problem", "rosenbrock", "--figure", ""), "--figure ''")


@pytest.mark.parametrize("flag", ["--weight-decay", "--learning-rate", "--target-return"])
@pytest.mark.parametrize("mode", [["--problem", "sphere"], ["--env-id", "CartPole-v1"]])
def test_es_nan_floats_are_refused_by_name(cli, flag, mode):
    refused(cli("es", "openai-es", *mode, flag, "nan"), flag, "not a finite number")


def test_es_workers_are_bounded_and_start_no_process(cli, tmp_path, monkeypatch):
    import rlcanon.es.policy

    def no_backend(*args, **kwargs):
        raise AssertionError("a worker backend was started")

    monkeypatch.setattr(rlcanon.es.policy, "make_backend", no_backend)
    before = set(multiprocessing.active_children())
    refused(
        cli("es", "cem", *ES_ENV_BASE, "--workers", "1e30", "--run-dir", str(tmp_path / "r")),
        "workers=1000000000000000019884624838656",
        "[1, ",
    )
    assert set(multiprocessing.active_children()) <= before
    assert not (tmp_path / "r").exists()


def test_es_problem_defects(cli):
    problem = ("es", "cma-es", "--problem", "sphere", "--max-evals", "50")
    refused(cli(*problem, "--x0-low", "nan", "--x0-high", "1"), "--x0-low", "not a finite number")
    refused(cli(*problem, "--x0-low=-1e300", "--x0-high", "1"), "--x0-low -1e+300", "[-1e+12, 1e+12]")
    refused(cli(*problem, "--target", "nan"), "--target")
    refused(cli(*problem, "--sigma0", "1e300"), "sigma0=")
    refused(cli(*problem, "--option", "popsize=1e30"), "popsize=")
    refused(cli(*problem, "--option", "eigen_gap_factor=Infinity"), "eigen_gap_factor=inf")
    refused(cli(*problem, "--option", "eigen_gap_factor=abc"), "eigen_gap_factor='abc'")
    refused(cli(*problem, "--option", "bounds=abc"), "bounds='abc'")
    refused(cli(*problem, "--option", "bounds=[1, -1]"), "low < high")
    refused(cli("es", "cem", "--problem", "sphere", "--option", "elite_fraction=0"), "elite_fraction=0")
    refused(cli(*problem, "--workers", "2"), "--workers does not apply to --problem")
    refused(cli(*problem, "--weight-decay", "0.1"), "--weight-decay does not apply to cma-es")
    refused(cli(*problem, "--figure", "x.png"), "--figure draws 2-D Rosenbrock")
    # an empty --problem is an unknown problem, not a silent switch to a CartPole policy search
    refused(cli("es", "cma-es", "--problem="), "unknown problem ''")


def test_es_policy_search_refuses_problem_flags(cli, tmp_path):
    result = cli("es", "cem", *ES_ENV_BASE, "--dim", "3", "--run-dir", str(tmp_path / "r"))
    refused(result, "--dim does not apply")
    assert not (tmp_path / "r").exists()
    refused(cli("es", "cem", *ES_ENV_BASE, "--learning-rate", "0.1"), "--learning-rate does not apply to cem")


@pytest.mark.parametrize("strategy", ["cma-es", "simple-es", "cem", "xnes", "snes", "openai-es"])
def test_unbounded_problems_finish_without_warnings(cli, strategy):
    # linear-slope has no minimum: the step size grows until the distribution degenerates (xNES:
    # a singular matrix), which ends the run like a stagnation, quietly and with a finite result
    code, out, err = cli(
        "es", strategy, "--problem", "linear-slope", "--max-evals", "20000", "--target=-1e300", "--json"
    )
    assert code == 0 and err == ""
    result = json.loads(out.splitlines()[-1], parse_constant=_no_constant)
    assert not result["reached_target"] and result["best_value"] < 0


def test_empty_run_dir_does_not_write_into_the_working_directory(cli):
    refused(cli("train", "ppo", *PPO_BASE, "--run-dir="), "--run-dir ''")
    refused(cli("tabular", "q-learning", "--episodes", "3", "--run-dir="), "--run-dir ''")


def test_warnings_before_a_failure_are_not_printed(monkeypatch, capsys):
    # e.g. a numpy overflow on the way to a NaN loss: the failure's one line is all that is printed
    import warnings

    import rlcanon.cli.commands as commands
    from rlcanon.cli import main
    from rlcanon.errors import TrainingError

    def failing(args):
        warnings.warn("overflow encountered in matmul", RuntimeWarning, stacklevel=1)
        raise TrainingError("loss/td became nan at step 64; training stopped")

    monkeypatch.setattr(commands, "run_command", failing)
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["rlcanon: error: loss/td became nan at step 64; training stopped"]


def test_an_absurd_learning_rate_is_refused_by_name(cli, tmp_path):
    refused(
        cli("train", "ppo", *PPO_BASE, "--learning-rate", "1e30", "--run-dir", str(tmp_path / "r")),
        "learning_rate",
    )


def test_a_value_with_a_newline_stays_on_one_line(cli):
    refused(cli("list", "a\nb"), "unrecognized arguments: a b")


def test_plot_without_points_draws_an_empty_figure_quietly(cli, trained, tmp_path):
    out = tmp_path / "empty.png"
    code, _, err = cli("plot", str(trained), "-o", str(out), "--metric", "charts/approx_kl")
    assert code == 0 and out.exists()
    assert "No artists" not in err


def test_a_run_that_ends_between_checkpoints_finishes(cli, tmp_path):
    # 64 steps, a checkpoint every 6 (a tenth of the run): the final checkpoint is written after the
    # loop, and must not find the metrics file closed (found by the property test: --train-freq=1)
    code, out, err = cli("train", "dqn", *DQN_BASE, "--train-freq", "1", "--run-dir", str(tmp_path / "r"))
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["total_timesteps"] == 64


def test_env_kwargs_must_be_finite(cli, tmp_path):
    # NaN is not JSON: the run's config.json could not be written
    for value in ("NaN", "Infinity", "[1e999]"):
        result = cli("train", "dqn", *DQN_BASE, "--env-kwargs", f"sutton_barto_reward={value}")
        refused(result, "--env-kwargs", "NaN and infinite numbers are not allowed")


@pytest.mark.parametrize("wrapper", ["observation-noise:std=1e30", "clip-action", "rescale-action"])
def test_tabular_refuses_wrappers_that_break_discrete_states(cli, tmp_path, wrapper):
    run = ["--episodes", "3", "--run-dir", str(tmp_path / "r")]
    result = cli("tabular", "mc-first-visit", "--env-id", "FrozenLake-v1", "--wrappers", wrapper, *run)
    refused(result, wrapper, "not allowed for tabular methods")
    assert not (tmp_path / "r").exists()


def test_unknown_frozenlake_map_name(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    argv = [
        "tabular",
        "q-learning",
        "--env-id",
        "FrozenLake-v1",
        "--env-kwargs",
        "map_name=abc",
        "--episodes",
        "3",
        "--run-dir",
        str(tmp_path / "r"),
    ]
    code, out, err = run_cli(argv, cwd)
    assert_one_line_contract(argv, code, out, err)


def test_box_wrapper_on_discrete_actions(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    argv = ["train", "ppo", *PPO_BASE, "--wrappers", "clip-action", "--run-dir", str(tmp_path / "r")]
    code, out, err = run_cli(argv, cwd)
    assert_one_line_contract(argv, code, out, err)


def test_env_kwargs_max_episode_steps_zero(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    run = ["--run-dir", str(tmp_path / "r")]
    argv = ["train", "ppo", *PPO_BASE, "--env-kwargs", "max_episode_steps=0", *run]
    code, out, err = run_cli(argv, cwd)
    assert_one_line_contract(argv, code, out, err)
