"""WANN (Gaier & Ha 2019) on CartPole-v1: several seeds of the default search, the champion's return
against its one shared weight, and the champion drawn.

    nice -n 10 python3 benchmarks/wann_cartpole.py --seeds 1 2 3 4 5 6 7 8 9 10 --out docs/img

For each seed it runs the default WANNConfig (64 networks, 30 generations, the paper's weight
series) in the run harness and reports: the first generation whose best network returns 500 under
every weight of the series, the harness's final evaluation of the champion at its tuned weight
(20 episodes), the champion's size, and the training time. It then sweeps the first seed's champion
over shared weights in [-3, 3] (10 episodes each, fresh starts) and draws it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from rlcanon.es.wann import WANNConfig, WANNLearner
from rlcanon.es.wann_graph import ACTIVATION_NAMES, Network
from rlcanon.registry import ENTRIES
from rlcanon.run.logger import read_metrics

CARTPOLE_INPUTS = ("x", "x_dot", "theta", "theta_dot", "bias")
CARTPOLE_OUTPUTS = ("left", "right")


def run_seed(seed: int, generations: int, root: Path) -> tuple[dict[str, float], WANNLearner]:
    cfg = WANNConfig(seed=seed, generations=generations, eval_episodes=20)
    t0 = time.perf_counter()
    result = ENTRIES["wann"].train(cfg, run_dir=root / f"seed{seed}", progress=False)
    wall = time.perf_counter() - t0
    best = read_metrics(root / f"seed{seed}")["wann/mean_return_best"]
    solved = next((g + 1 for g, v in enumerate(best) if v >= 500.0), None)
    agent = result.agent
    row = {
        "seed": seed,
        "first_generation_all_weights_500": solved,
        "champion_series_mean": agent.champion_score,
        "tuned_weight": agent.champion_weight,
        "eval_return_mean": result.summary["eval_return_mean"],
        "connections": agent.champion.n_connections,
        "hidden_nodes": agent.champion.n_hidden,
        "train_time_s": result.summary["train_time_s"],
        "wall_time_s": round(wall, 2),
    }
    return row, agent


def weight_sweep(agent: WANNLearner, weights: np.ndarray, episodes: int) -> np.ndarray:
    """Mean return of the champion at each shared weight, all in one batch of envs."""
    return agent.evaluate([agent.champion], weights, episodes)[0]


def forward_speed(repeats: int = 200) -> dict[str, float]:
    """Microseconds per env step of the forward pass of 64 networks x 6 weights (384 rows): the
    batched :class:`PopulationForward` against a loop over (network, weight) with the reference
    :meth:`Network.forward`, on the same inputs (outputs checked equal)."""
    from rlcanon.es.wann_graph import PopulationForward, minimal_network, mutate

    rng = np.random.default_rng(0)
    nets = [minimal_network(5, 2, 0.25, rng) for _ in range(64)]
    for _ in range(10):
        nets = [mutate(n, np.array([0.25, 0.2, 0.5]), 32, rng) for n in nets]
    series = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])
    x = rng.normal(size=(64 * 6, 4))
    batched = PopulationForward(nets, np.tile(series, (64, 1)))

    def looped() -> np.ndarray:
        return np.concatenate(
            [n.forward(x[6 * g + k][None], w) for g, n in enumerate(nets) for k, w in enumerate(series)]
        )

    np.testing.assert_allclose(batched(x), looped(), rtol=1e-12)
    t0 = time.perf_counter()
    for _ in range(repeats):
        batched(x)
    t_batched = (time.perf_counter() - t0) / repeats * 1e6
    t0 = time.perf_counter()
    for _ in range(max(repeats // 20, 1)):
        looped()
    t_looped = (time.perf_counter() - t0) / max(repeats // 20, 1) * 1e6
    return {"batched_us": round(t_batched, 1), "looped_us": round(t_looped, 1)}


def depth_layout(net: Network) -> dict[int, tuple[float, float]]:
    depth = net.depths()
    outputs = range(net.n_inputs, net.n_inputs + net.n_outputs)
    top = int(depth.max()) + 1
    for o in outputs:  # outputs on the far right, inputs on the left
        depth[o] = top
    pos = {}
    for d in np.unique(depth):
        nodes = np.nonzero(depth == d)[0]
        for k, node in enumerate(nodes):
            pos[int(node)] = (float(d), (k - (len(nodes) - 1) / 2) * 1.0)
    return pos


def draw(net: Network, weight: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = depth_layout(net)
    fig, ax = plt.subplots(figsize=(7, 4))
    for src, dst in net.edges.tolist():
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        ax.annotate(
            "",
            (x1, y1),
            (x0, y0),
            arrowprops={
                "arrowstyle": "-|>",
                "color": "0.4",
                "lw": 1.2,
                "shrinkA": 16,
                "shrinkB": 16,
                "mutation_scale": 14,
            },
        )
    for node, (x, y) in pos.items():
        if node < net.n_inputs:
            label, colour = CARTPOLE_INPUTS[node], "#9ecae1"
        elif node < net.n_inputs + net.n_outputs:
            label, colour = CARTPOLE_OUTPUTS[node - net.n_inputs], "#fdae6b"
        else:
            label, colour = ACTIVATION_NAMES[int(net.activation[node])], "#a1d99b"
        ax.scatter([x], [y], s=900, color=colour, zorder=3, edgecolors="k")
        ax.text(x, y, label, ha="center", va="center", fontsize=7, zorder=4)
    ax.set_title(f"WANN champion on CartPole-v1 (every connection: w = {weight:.2f})")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sweep(weights: np.ndarray, returns: np.ndarray, series: tuple[float, ...], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(weights, returns, marker=".")
    for w in series:
        ax.axvline(w, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("shared weight (grey: the training series)")
    ax.set_ylabel("mean return (10 episodes)")
    ax.set_title("WANN champion: return against its one shared weight")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    speed = forward_speed()
    print("forward pass per env step, 64 networks x 6 weights:", json.dumps(speed))
    rows, agents = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row, agent = run_seed(seed, args.generations, Path(tmp))
            rows.append(row)
            agents[seed] = agent
            print(json.dumps(row))
        first = agents[args.seeds[0]]
        weights = np.round(np.linspace(-3.0, 3.0, 61), 2)
        returns = weight_sweep(first, weights, 10)
        series = first.cfg.shared_weights
        at_series = weight_sweep(first, np.array(series), 10)
        draw(first.champion, first.champion_weight, args.out / "wann_champion.png")
        plot_sweep(weights, returns, series, args.out / "wann_weight_sweep.png")
    print("| seed | gen. all 6 at 500 | champion series mean | tuned w | eval (20 ep.) | conns | hidden |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['first_generation_all_weights_500']} | {r['champion_series_mean']:.1f} | "
            f"{r['tuned_weight']:.2f} | {r['eval_return_mean']:.1f} | {r['connections']} | "
            f"{r['hidden_nodes']} |"
        )
    print(
        "sweep of seed",
        args.seeds[0],
        "champion:",
        dict(zip(weights.tolist(), np.round(returns, 1).tolist())),
    )
    print("at the series:", dict(zip(series, np.round(at_series, 1).tolist())))
    solved = sum(r["eval_return_mean"] > 200 for r in rows)
    mean_time = np.mean([r["train_time_s"] for r in rows])
    print(f"eval > 200 on {solved}/{len(rows)} seeds; mean train time {mean_time:.1f} s")


if __name__ == "__main__":
    main()
