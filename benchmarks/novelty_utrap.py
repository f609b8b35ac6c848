"""Novelty search on the deceptive U-trap: plain OpenAI-ES (fitness only, via es-policy) against
NS-ES, NSR-ES and NSRA-ES (Conti et al. 2018, Fig. 6 in miniature).

Every method runs with the same policy (tanh MLP, 16 hidden units), noise 0.1, Adam 0.05, 20
candidates per generation and the same number of generations. After each generation the mean
policy of the updated agent (ES: the one mean) is rolled out once; a method has "passed the wall"
once such a mean policy ends beyond the closed side of the U (y > 0.35; the closed side is
y = 0.3). Prints a Markdown table per seed and a summary, and draws every archived final position
(one panel per method) with the walls.

    python benchmarks/novelty_utrap.py [--seeds 1 2 3] [--generations 150] [--plot docs/img/novelty_utrap.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table

PASS_Y = 0.35
"""Final y beyond which a position lies past the closed side of the U (y = 0.3)."""
SHARED = {"hidden": (16,), "popsize": 20, "learning_rate": 0.05}


def final_position(learner, env) -> tuple[float, float]:
    """Roll the learner's acting policy out once and return where it ends."""
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        action, _ = learner.predict(obs[None])
        obs, _, term, trunc, info = env.step(action[0])
        done = term or trunc
    return float(info["bc"][0]), float(info["bc"][1])


def run_es(seed: int, generations: int) -> dict:
    import gymnasium as gym
    import numpy as np

    from rlcanon.es.policy import ESLearner, ESPolicyConfig

    cfg = ESPolicyConfig(
        env_id="rlcanon/UTrap-v0",
        strategy="openai-es",
        seed=seed,
        generations=generations,
        sigma0=0.1,
        **SHARED,
    )
    learner = ESLearner(cfg, cfg.env_id, np.random.default_rng(seed))
    env = gym.make(cfg.env_id)
    positions = []
    for _ in range(generations):
        learner.iterate()
        positions.append(final_position(learner, env))
    return {"positions": positions, "best_fitness": float(learner.es.best_f)}


def run_novelty(variant: str, seed: int, generations: int) -> dict:
    import numpy as np

    from rlcanon.es.novelty import NoveltyLearner, NSESConfig, NSRAESConfig, NSRESConfig

    config_class = {"ns-es": NSESConfig, "nsr-es": NSRESConfig, "nsra-es": NSRAESConfig}[variant]
    cfg = config_class(seed=seed, generations=generations, sigma=0.1, **SHARED)
    learner = NoveltyLearner(cfg, cfg.env_id, np.random.default_rng(seed))
    weights = []
    for _ in range(generations):
        weights.append(learner.iterate()["novelty/weight"])
    archive = learner.meta.archive.behaviours[cfg.meta_population :]  # one per generation
    return {
        "positions": [tuple(map(float, row)) for row in archive],
        "best_fitness": float(learner.meta.best_fitness),
        "final_weight": weights[-1],
    }


def summarise(method: str, seed: int, out: dict, seconds: float) -> dict:
    import numpy as np

    from rlcanon.envs.utrap import GOAL

    pos = np.array(out["positions"])
    passed = np.nonzero(pos[:, 1] > PASS_Y)[0]
    return {
        "method": method,
        "seed": seed,
        "passed": bool(len(passed)),
        "first_pass_generation": int(passed[0]) + 1 if len(passed) else None,
        "closest_to_goal": float(np.min(np.hypot(pos[:, 0] - GOAL[0], pos[:, 1] - GOAL[1]))),
        "best_fitness": out["best_fitness"],
        "final_weight": out.get("final_weight"),
        "seconds": seconds,
    }


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlcanon.envs.utrap import GOAL, HORIZONTAL_WALLS, START, VERTICAL_WALLS

    methods = list(results)
    fig, axes = plt.subplots(1, len(methods), figsize=(4 * len(methods), 4), sharex=True, sharey=True)
    for ax, method in zip(axes, methods):
        for seed, out in results[method].items():
            xy = list(zip(*out["positions"]))
            ax.scatter(xy[0], xy[1], s=6, alpha=0.6, label=f"seed {seed}")
        for x, y0, y1 in VERTICAL_WALLS:
            ax.plot([x, x], [y0, y1], "k", lw=2)
        for y, x0, x1 in HORIZONTAL_WALLS:
            ax.plot([x0, x1], [y, y], "k", lw=2)
        ax.plot(*START, "bs", ms=6)
        ax.plot(*GOAL, "r*", ms=12)
        ax.set_title(method)
        ax.set_xlim(-5, 5)
        ax.set_ylim(-5, 4)
        ax.set_aspect("equal")
    axes[0].legend(loc="lower left", fontsize=7)
    fig.suptitle("U-trap: final positions of the mean policies, every generation")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--generations", type=int, default=150)
    parser.add_argument("--methods", nargs="+", default=["openai-es", "ns-es", "nsr-es", "nsra-es"])
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    pin_threads(1)
    import rlcanon  # noqa: F401 - registers rlcanon/UTrap-v0

    rows, results = [], {m: {} for m in args.methods}
    for seed in args.seeds:
        for method in args.methods:
            start = time.perf_counter()
            if method == "openai-es":
                out = run_es(seed, args.generations)
            else:
                out = run_novelty(method, seed, args.generations)
            results[method][seed] = out
            rows.append(summarise(method, seed, out, time.perf_counter() - start))
            print(json.dumps(rows[-1]), flush=True)
    columns = ["method", "seed", "passed", "first_pass_generation", "closest_to_goal", "best_fitness"]
    print(table(rows, [*columns, "final_weight", "seconds"]))
    for method in args.methods:
        mine = [r for r in rows if r["method"] == method]
        print(f"{method}: passed the wall on {sum(r['passed'] for r in mine)} of {len(mine)} seeds")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "results": results}))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
