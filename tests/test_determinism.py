"""The same seed gives the same run on the CPU, for every registry entry."""

import pytest

from rlcanon.registry import ENTRIES, make_config
from rlcanon.run.logger import read_metrics


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_same_seed_same_run(name, tmp_path):
    entry = ENTRIES[name]

    def run(tag, seed):
        cfg = make_config(name, entry.smoke_env, eval_episodes=3, seed=seed, **entry.smoke)
        cfg = type(cfg)(**{**cfg.__dict__, cfg.BUDGET: cfg.budget * 3})
        res = entry.train(cfg, run_dir=tmp_path / tag, progress=False)
        cols = read_metrics(tmp_path / tag)
        losses = [v for k, v in cols.items() if k.startswith("loss/")]
        return cols["charts/episodic_return"], losses, res.summary

    r1, l1, s1 = run("a", 3)
    r2, l2, s2 = run("b", 3)
    r3, _, _ = run("c", 4)
    assert str(r1) == str(r2) and str(l1) == str(l2)  # str() so NaN == NaN
    assert s1["eval_return_mean"] == s2["eval_return_mean"]
    assert str(r1) != str(r3)
