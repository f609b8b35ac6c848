"""The command line: happy path and bad input (one line, non-zero exit, no traceback, no loss)."""

import json
import subprocess
import sys

import pytest


def cli(*args, check=False):
    proc = subprocess.run(
        [sys.executable, "-m", "rlcanon", *args], capture_output=True, text=True, timeout=300
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_clean_error(proc, *needles):
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "ppo-run"
    proc = cli(
        "train",
        "ppo",
        "--env-id",
        "CartPole-v1",
        "--total-timesteps",
        "2048",
        "--num-envs",
        "2",
        "--num-steps",
        "128",
        "--batch-size",
        "64",
        "--run-dir",
        str(run),
        "--no-progress",
        check=True,
    )
    return run, json.loads(proc.stdout.strip().splitlines()[-1])


def test_train_prints_summary_and_writes_run_dir(trained):
    run, summary = trained
    assert summary["total_timesteps"] == 2048 and summary["run_dir"] == str(run)
    for name in ("config.json", "metrics.csv", "summary.json", "checkpoints/latest.json"):
        assert (run / name).exists()


def test_eval_prints_eval_keys(trained):
    run, _ = trained
    out = json.loads(cli("eval", str(run), "--episodes", "3", check=True).stdout)
    assert out["eval_episodes"] == 3
    assert {"eval_return_mean", "eval_return_std"} <= set(out)


def test_plot_writes_png(trained, tmp_path):
    run, _ = trained
    out = tmp_path / "curve.png"
    cli("plot", str(run), str(run), "-o", str(out), check=True)
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_list_names_algorithms():
    out = cli("list", "--json", check=True).stdout
    assert {"ppo", "dqn"} <= set(json.loads(out)["algos"])


def test_help_explains_every_flag():
    out = cli("train", "dqn", "--help", check=True).stdout
    assert "--double-dqn" in out and "Choose the bootstrap action" in out
    assert "--target-update-interval" in out


@pytest.mark.parametrize("command", [("train", "ppo"), ("es", "cem"), ("tabular", "sarsa")])
def test_help_shows_every_default_as_a_value(command):
    # fields with a default_factory (env_kwargs, wrappers) once printed a dataclasses sentinel
    out = cli(*command, "--help", check=True).stdout
    assert "MISSING" not in out and " object at 0x" not in out
    assert "NAME=VALUE ...). (default: none)" in " ".join(out.split())


def test_unknown_algorithm():
    assert_clean_error(cli("train", "nope"), "invalid choice", "ppo")


def test_unknown_env_id(tmp_path):
    assert_clean_error(
        cli("train", "ppo", "--env-id", "CartPoel-v1", "--run-dir", str(tmp_path / "r")),
        "unknown env id",
        "CartPole-v1",
    )
    assert not (tmp_path / "r").exists()


def test_negative_learning_rate():
    assert_clean_error(cli("train", "ppo", "--learning-rate", "-0.1"), "learning_rate", "> 0")


def test_unknown_device_names_the_choices():
    assert_clean_error(cli("train", "dqn", "--device", "gpu"), "device='gpu'", "'cuda:N'")


def test_batch_larger_than_buffer():
    assert_clean_error(
        cli("train", "dqn", "--batch-size", "512", "--buffer-size", "100"), "batch_size=512", "buffer_size"
    )


def test_missing_run_dir(tmp_path):
    assert_clean_error(cli("eval", str(tmp_path / "missing")), "not found")


def test_corrupt_checkpoint_is_reported_and_kept(trained, tmp_path):
    import shutil

    run, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    latest = json.loads((copy / "checkpoints" / "latest.json").read_text())["checkpoint"]
    weights = copy / "checkpoints" / latest / "arrays.safetensors"
    weights.write_bytes(b"not safetensors at all")
    assert_clean_error(cli("eval", str(copy)), "corrupt")
    assert weights.read_bytes() == b"not safetensors at all"  # nothing on disk was touched


def test_foreign_checkpoint_is_reported(tmp_path):
    run = tmp_path / "foreign"
    (run / "checkpoints" / "step-1").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"algo": "ppo", "config": {}}))
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"hello": 1}))
    assert_clean_error(cli("eval", str(run)), "not an rlcanon checkpoint")


def test_bandit_json_last_line():
    out = cli(
        "bandit",
        "thompson",
        "--means",
        "0.1,0.5,0.9",
        "--horizon",
        "500",
        "--runs",
        "20",
        "--json",
        check=True,
    ).stdout
    stats = json.loads(out.strip().splitlines()[-1])
    for key in (
        "regret_mean",
        "regret_median",
        "regret_stderr",
        "optimal_action_fraction",
        "lai_robbins_bound",
    ):
        assert key in stats
    gauss = cli(
        "bandit",
        "ucb1",
        "--kind",
        "gaussian",
        "--arms",
        "3",
        "--horizon",
        "100",
        "--runs",
        "5",
        "--json",
        check=True,
    ).stdout
    assert json.loads(gauss.strip().splitlines()[-1])["lai_robbins_bound"] is None


def test_bandit_compare_writes_png(tmp_path):
    out = tmp_path / "regret.png"
    cli(
        "bandit",
        "compare",
        "--means",
        "0.2,0.8",
        "--horizon",
        "200",
        "--runs",
        "10",
        "-o",
        str(out),
        check=True,
    )
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args,needle",
    [
        (["bandit", "ucb1", "--means", "0.1,1.5"], "must lie in [0, 1]"),
        (["bandit", "ucb1", "--arms", "1"], "K >= 2"),
        (["bandit", "ucb1", "--means", "0.1,,0.5"], "empty entry"),
        (["bandit", "ucb1", "--horizon", "0"], "horizon"),
        (["bandit", "nope"], "unknown bandit solver"),
        (["tabular", "nope"], "method='nope'"),
        (["tabular", "sarsa", "--env-id", "CartPole-v1"], "not tabular"),
    ],
)
def test_family_bad_input(args, needle):
    assert_clean_error(cli(*args), needle)


def test_tabular_writes_run_dir(tmp_path):
    run = tmp_path / "t"
    out = cli(
        "tabular",
        "q-learning",
        "--env-id",
        "FrozenLake-v1",
        "--episodes",
        "50",
        "--run-dir",
        str(run),
        check=True,
    ).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["eval_episodes"] == 20 and (run / "checkpoints" / "latest.json").exists()
    ev = json.loads(cli("eval", str(run), "--episodes", "5", check=True).stdout)
    assert ev["eval_episodes"] == 5 and "eval_return_mean" in ev
    # a resumed run keeps its method: another one is refused by name
    assert_clean_error(cli("tabular", "sarsa", "--resume", str(run), "--episodes", "60"), "method")
    resumed = cli("tabular", "q-learning", "--resume", str(run), "--episodes", "60", check=True).stdout
    assert json.loads(resumed.strip().splitlines()[-1])["episodes"] == 60


def test_es_problem_json_last_line():
    out = cli(
        "es",
        "cma-es",
        "--problem",
        "sphere",
        "--dim",
        "5",
        "--x0-low",
        "-4",
        "--x0-high",
        "4",
        "--sigma0",
        "2",
        "--seed",
        "1",
        "--json",
        check=True,
    ).stdout
    res = json.loads(out.strip().splitlines()[-1])
    assert res["reached_target"] and res["best_value"] <= 1e-8
    assert {"evaluations", "wall_time_s"} <= set(res)


def test_es_policy_search_writes_run_dir_and_resumes(tmp_path):
    run = tmp_path / "es"
    out = cli(
        "es",
        "openai-es",
        "--env-id",
        "CartPole-v1",
        "--generations",
        "3",
        "--popsize",
        "8",
        "--workers",
        "2",
        "--run-dir",
        str(run),
        "--no-progress",
        check=True,
    ).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["generations"] == 3 and "eval_return_mean" in summary
    out = cli("es", "openai-es", "--resume", str(run), "--no-progress", check=True).stdout
    assert json.loads(out.strip().splitlines()[-1])["generations"] == 3
    ev = json.loads(cli("eval", str(run), "--episodes", "2", check=True).stdout)
    assert ev["eval_episodes"] == 2 and (run / "policy.safetensors").exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["es", "cma-es", "--problem", "sphere", "--dim", "0"], "dimension must be >= 1"),
        (["es", "cma-es", "--problem", "sphere", "--popsize", "1"], "popsize=1"),
        (["es", "cma-es", "--problem", "sphere", "--sigma0", "0"], "sigma0"),
        (["es", "cma-es", "--problem", "sphere", "--option", "eigen_gap_factor=-1"], "eigen_gap_factor=-1"),
        (["es", "nope", "--problem", "sphere"], "invalid choice: 'nope'"),
        (["es", "cem", "--problem", "sphere", "--option", "nope=1"], "its options are ['popsize'"),
        (["es", "cem", "--env-id", "CartPole-v1", "--ray-address", "h:1"], "add --backend ray"),
        (["es", "cem", "--env-id", "CartPole-v1", "--backend", "ray", "--ray-address", "h"], "HOST:PORT"),
        (["es", "cma-es", "--problem", "spear"], "unknown problem"),
    ],
)
def test_es_bad_input(args, needle):
    assert_clean_error(cli(*args), needle)


def test_strategy_and_solver_options_from_the_command_line():
    out = cli(
        "es",
        "cma-es",
        "--problem",
        "sphere",
        "--dim",
        "4",
        "--option",
        "eigen_gap_factor=0.5",
        "--json",
        check=True,
    ).stdout
    assert json.loads(out.strip().splitlines()[-1])["reached_target"]
    assert_clean_error(cli("es", "cma-es", "--problem", "sphere", "--option", "nope=1"), "has no option")
    out = cli(
        "bandit",
        "epsilon-greedy",
        "--arms",
        "3",
        "--horizon",
        "50",
        "--runs",
        "4",
        "--param",
        "epsilon=0.5",
        "--json",
        check=True,
    ).stdout
    assert "regret_mean" in json.loads(out.strip().splitlines()[-1])


def test_resume_names_the_changed_flag_before_checking_the_merged_config(trained, tmp_path):
    # the run has 2 envs x 128 steps and batch 64; 1 env would also make the batch too large for
    # the rollout, but the refusal must name the flag that changed
    run, _ = trained
    assert_clean_error(
        cli("train", "ppo", "--resume", str(run), "--num-envs", "1"),
        "whose num_envs is 2, not 1",
        "only --total-timesteps and --device may change",
    )


def test_device_is_refused_for_runs_without_one(tmp_path):
    run = tmp_path / "tab"
    cli("tabular", "q-learning", "--episodes", "5", "--run-dir", str(run), check=True)
    refusal = cli("eval", str(run), "--device", "cpu")
    assert_clean_error(refusal, "--device does not apply", "no device setting")
    assert_clean_error(
        cli("tabular", "q-learning", "--resume", str(run), "--alpha", "0.3"),
        "only --episodes may change",
    )


def test_dp_methods_default_to_a_discount_below_one(tmp_path):
    run = tmp_path / "vi"
    proc = cli("tabular", "value-iteration", "--run-dir", str(run), "--no-progress", check=True)
    assert "uses gamma=0.99 unless --gamma is given" in proc.stderr
    assert json.loads((run / "config.json").read_text())["config"]["gamma"] == 0.99
    assert json.loads(proc.stdout.strip().splitlines()[-1])["eval_return_mean"] == -13.0  # CliffWalking
    cli("tabular", "value-iteration", "--resume", str(run), "--no-progress", check=True)
    undiscounted = cli("tabular", "policy-iteration", "--gamma", "1", "--run-dir", str(tmp_path / "pi"))
    assert_clean_error(undiscounted, "gamma < 1")


def test_an_unreachable_ray_address_is_refused_at_once(tmp_path):
    pytest.importorskip("ray")
    # Ray itself would retry for minutes; nothing listens on port 1
    args = ["es", "cem", "--env-id", "CartPole-v1", "--backend", "ray", "--ray-address", "127.0.0.1:1"]
    proc = cli(*args, "--generations", "1", "--popsize", "4", "--run-dir", str(tmp_path / "r"))
    assert_clean_error(proc, "cannot reach a Ray cluster at 127.0.0.1:1")
