"""Hill climbing, simulated annealing and the SciPy Nelder-Mead adapter: hand-checked updates,
the same points as SciPy, exact continuation after a state round trip, NaN/inf, small problems."""

import gc
import math

import numpy as np
import pytest
from scipy.optimize import minimize as scipy_minimize

from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.es import PROBLEMS, make
from rlcanon.es.optimize import minimize
from rlcanon.es.state import StrategyState

BASELINES = ["hill-climbing", "simulated-annealing", "nelder-mead"]


def scalar(problem):
    return lambda x: float(PROBLEMS[problem](x[None])[0])


def _run(es, f, gens):
    for _ in range(gens):
        X = es.ask()
        es.tell(X, -f(X))
    return es


# ---- hill climbing ----


def test_hill_climbing_never_accepts_a_worse_point():
    es = make("hill-climbing", np.zeros(3), 0.5, seed=0, popsize=4)
    noise = np.random.default_rng(1)
    current_f, moves = None, 0
    for generation in range(200):
        X = es.ask()
        f = noise.standard_normal(4)
        before = es.mean.copy()
        es.tell(X, f)
        candidates = (X, f) if generation else (X[1:], f[1:])  # row 0 of the first generation is x0
        if generation == 0:
            current_f = f[0]
        i = int(np.argmax(candidates[1]))
        if candidates[1][i] >= current_f:
            np.testing.assert_array_equal(es.mean, candidates[0][i])
            current_f, moves = candidates[1][i], moves + (not np.array_equal(before, es.mean))
        else:
            np.testing.assert_array_equal(es.mean, before)
        assert es.best_f == current_f  # elitist: the current point is a best point
    assert 0 < moves < 200


def test_hill_climbing_first_generation_evaluates_x0_and_ties_move():
    es = make("hill-climbing", np.array([1.0, 2.0]), 0.1, seed=0, popsize=2, success_rule=False)
    X = es.ask()
    np.testing.assert_array_equal(X[0], [1.0, 2.0])
    es.tell(X, [0.0, -1.0])  # the step is worse than x0: stay
    np.testing.assert_array_equal(es.mean, [1.0, 2.0])
    X = es.ask()
    es.tell(X, [0.0, -5.0])  # a tie moves (a plateau is crossed)
    np.testing.assert_array_equal(es.mean, X[0])
    assert es.sigma == 0.1 and es.evaluations == 4 and es.generation == 2


def test_one_fifth_rule_moves_sigma_by_the_hand_computed_factor():
    """sigma <- sigma exp((rate - 1/5) / d), d = sqrt(n + 1) = 2 for n = 3."""
    es = make("hill-climbing", np.zeros(3), 1.0, seed=0, popsize=5)
    es.tell(es.ask(), np.zeros(5))  # x0 = 0 and four ties: rate 4/4
    assert es.sigma == pytest.approx(math.exp(0.8 / 2))
    sigma = es.sigma
    es.tell(es.ask(), [1.0, -1, -1, -1, -1])  # one success in five: rate 1/5, sigma stays
    assert es.sigma == pytest.approx(sigma)
    es.tell(es.ask(), [-1.0] * 5)  # none
    assert es.sigma == pytest.approx(sigma * math.exp(-0.2 / 2))
    sigma = es.sigma
    es.tell(es.ask(), [2.0, 3.0, -1, -1, -1])  # two successes: rate 2/5
    assert es.sigma == pytest.approx(sigma * math.exp(0.2 / 2))


def test_one_fifth_rule_grows_sigma_on_a_slope_and_shrinks_it_at_an_optimum():
    slope = _run(make("hill-climbing", np.zeros(5), 0.1, seed=0), PROBLEMS["linear-slope"], 100)
    assert slope.sigma > 10 * 0.1
    sphere = _run(make("hill-climbing", np.full(5, 1e-4), 1.0, seed=0), PROBLEMS["sphere"], 100)
    assert sphere.sigma < 0.01


# ---- simulated annealing ----


def test_metropolis_probability_and_geometric_cooling_by_hand():
    es = make("simulated-annealing", np.zeros(2), 1.0, initial_temperature=2.0, cooling_rate=0.5)
    assert es.acceptance_probability(-1.0, 0.0) == pytest.approx(math.exp(-0.5))
    assert es.acceptance_probability(1.0, 0.0) == 1.0
    assert es.acceptance_probability(-np.inf, -np.inf) == 1.0  # equal: moves, and no inf - inf
    assert es.acceptance_probability(-np.inf, 0.0) == 0.0
    assert es.acceptance_probability(3.0, np.inf) == 0.0
    for _ in range(3):
        es.tell(es.ask(), [0.0])
    assert es.temperature == pytest.approx(0.25)  # 2 * 0.5^3
    assert es.sigma == pytest.approx(math.sqrt(0.25 / 2))  # sigma0 (T / T0)^(1/2)
    assert es.acceptance_probability(-1.0, 0.0) == pytest.approx(math.exp(-4.0))
    log = make("simulated-annealing", np.zeros(2), 1.0, schedule="logarithmic", initial_temperature=3.0)
    for _ in range(4):
        log.tell(log.ask(), [0.0])
    assert log.temperature == pytest.approx(3.0 * math.log(2) / math.log(6))


def test_simulated_annealing_accepts_exactly_where_the_seeded_uniform_is_below_exp_delta_over_t():
    """Replay the strategy's generator: gen 0 draws its (overwritten) normals; every later
    generation draws one proposal and then the Metropolis uniform."""
    seed, t0, alpha, delta = 7, 1.5, 0.98, 0.8
    es = make("simulated-annealing", np.zeros(2), 0.3, seed=seed, initial_temperature=t0, cooling_rate=alpha)
    replay = np.random.default_rng(seed)
    replay.standard_normal((1, 2))
    es.tell(es.ask(), [0.0])
    accepted = 0
    for k in range(1, 41):
        current, current_f = es.mean.copy(), es.mean_f
        x = es.ask()
        np.testing.assert_allclose(x[0], current + 0.3 * (alpha**k) ** 0.5 * replay.standard_normal(2))
        es.tell(x, [current_f - delta])
        expected = replay.random() < math.exp(-delta / (t0 * alpha**k))
        np.testing.assert_array_equal(es.mean, x[0] if expected else current)
        accepted += expected
    assert 3 < accepted < 37  # both branches ran


def test_acceptance_frequency_matches_the_metropolis_formula():
    es = make("simulated-annealing", np.zeros(1), 0.1, seed=3, cooling_rate=1 - 1e-12)
    es.tell(es.ask(), [0.0])
    moves, trials = 0, 4000
    for _ in range(trials):
        before = es.mean_f
        es.tell(es.ask(), [before - 0.7])
        moves += es.mean_f != before
    assert moves / trials == pytest.approx(math.exp(-0.7), abs=0.03)  # binomial sd 0.008


# ---- Nelder-Mead against SciPy itself ----


def scipy_points(f, x0, sigma0, **options):
    points = []

    def recorded(x):
        points.append(x.copy())
        return f(x)

    simplex = np.vstack([x0, x0 + sigma0 * np.eye(len(x0))])
    opts = {"xatol": 1e-10, "fatol": 1e-12, "maxiter": np.inf, "maxfev": np.inf, **options}
    result = scipy_minimize(recorded, x0, method="Nelder-Mead", options={**opts, "initial_simplex": simplex})
    return np.array(points), result


def adapter_points(f, x0, sigma0, popsize=None, **options):
    es = make("nelder-mead", x0, sigma0, popsize=popsize, **options)
    points = []
    while not es.should_stop():
        X = es.ask()
        assert (X[0] == X).all()
        points.append(X[0].copy())
        es.tell(X, np.full(len(X), -f(X[0])))
    return np.array(points), es


@pytest.mark.parametrize(
    "problem,x0,sigma0,options",
    [
        ("rosenbrock", np.zeros(2), 0.5, {}),
        ("sphere", np.array([1.0, -2.0, 0.5]), 1.0, {"adaptive": True}),
        ("ellipsoid", np.ones(4), 0.3, {"xatol": 1e-4, "fatol": 1e-4}),  # SciPy's own tolerances
        ("rosenbrock", np.zeros(3), 0.5, {"maxfev": 150}),
    ],
)
def test_nelder_mead_visits_exactly_scipys_points(problem, x0, sigma0, options):
    f = scalar(problem)
    expected, result = scipy_points(f, x0, sigma0, **options)
    points, es = adapter_points(f, x0, sigma0, **options)
    np.testing.assert_array_equal(points, expected)
    np.testing.assert_array_equal(es.best_x, result.x)
    assert -es.best_f == result.fun and es.evaluations == result.nfev
    assert es.should_stop() == {"scipy": result.message} and es.sigma == 0.0


def test_nelder_mead_nan_reaches_scipy_as_plus_inf():
    def f(x):
        return float(np.sum(x**2)) if x[0] < 0.8 else np.nan

    expected, _ = scipy_points(lambda x: np.inf if np.isnan(f(x)) else f(x), np.ones(2) * 0.5, 0.5)
    points, es = adapter_points(f, np.ones(2) * 0.5, 0.5)
    np.testing.assert_array_equal(points, expected)
    assert -np.inf in es.history and np.isfinite(es.best_f)


def test_nelder_mead_popsize_repeats_the_point_and_tells_scipy_the_mean():
    f = scalar("rosenbrock")
    expected, _ = scipy_points(f, np.zeros(2), 0.5)
    points, es = adapter_points(f, np.zeros(2), 0.5, popsize=2)  # (v + v) / 2 == v exactly
    np.testing.assert_array_equal(points, expected)
    assert es.evaluations == 2 * len(expected)
    es = make("nelder-mead", np.zeros(2), 0.5, popsize=3)
    es.tell(es.ask(), [1.0, 2.0, 6.0])
    es.tell(es.ask(), [1.0, np.nan, 6.0])  # NaN ranks worst: the mean is -inf
    assert es.history == [3.0, -np.inf] and es.best_f == 3.0


def test_nelder_mead_refuses_a_population_it_did_not_ask_for():
    es = make("nelder-mead", np.zeros(2), 1.0)
    with pytest.raises(ConfigError, match="did not return"):
        es.tell(np.ones((1, 2)), [0.0])  # before any ask(): SciPy's first point is x0
    X = es.ask()
    with pytest.raises(ConfigError, match="did not return"):
        es.tell(X + 1.0, [0.0])
    es.tell(X, [0.0])
    with pytest.raises(ConfigError, match="did not return"):
        es.tell(X, [0.0])  # told twice: SciPy now waits for its second point
    assert es.history == [0.0] and es.evaluations == 1


def test_nelder_mead_after_scipy_returns_keeps_the_best_point():
    es = make("nelder-mead", np.ones(2), 0.5, xatol=1e-3, fatol=1e-3)
    while not es.should_stop():
        X = es.ask()
        es.tell(X, -PROBLEMS["sphere"](X))
    best = es.best_x.copy()
    for _ in range(3):
        X = es.ask()
        np.testing.assert_array_equal(X[0], best)
        es.tell(X, [np.nan])
    assert "scipy" in es.should_stop() and es.generation == len(es.history) + 3


def test_nelder_mead_worker_threads_end_on_close_load_and_garbage_collection():
    es = _run(make("nelder-mead", np.zeros(3), 0.5), PROBLEMS["sphere"], 5)
    worker = es._worker
    assert worker.is_alive()
    es.load_state_dict(es.state_dict())  # the replay runs on a new worker; the old one ends
    worker.join(timeout=10)
    assert not worker.is_alive() and es._worker.is_alive()
    worker = es._worker
    es.close()
    assert not worker.is_alive()
    twin = _run(make("nelder-mead", np.zeros(3), 0.5), PROBLEMS["sphere"], 5)
    np.testing.assert_array_equal(es.ask(), twin.ask())  # after close(), a replay goes on where it was
    es = _run(make("nelder-mead", np.zeros(3), 0.5), PROBLEMS["sphere"], 5)
    worker = es._worker
    del es
    gc.collect()
    worker.join(timeout=10)
    assert not worker.is_alive()


# ---- every baseline ----


def through_checkpoint(es, fresh):
    """The state as a checkpoint holds it (arrays and JSON), checked against a fresh strategy's
    specs, then loaded into it."""
    from rlcanon.core.validate import check_arrays, check_json

    source, target = StrategyState(es), StrategyState(fresh)
    arrays = {k: np.array(v) for k, v in source.state_arrays().items()}
    check_arrays("state", arrays, target.array_specs())
    check_json("state", source.state_json(), target.json_schema())
    target.load_state_arrays(arrays)
    target.load_state_json(source.state_json())
    return fresh


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("gens", [1, 7, 40])
def test_checkpoint_round_trip_mid_run_continues_identically(name, gens):
    def f(X):
        values = -PROBLEMS["rosenbrock"](X)
        values[::3] = np.where(X[::3, 0] > 0.2, np.nan, values[::3])  # NaN in the records too
        return values

    a = make(name, np.zeros(3), 0.3, seed=4, popsize=2)
    for _ in range(gens):
        X = a.ask()
        a.tell(X, f(X))
    b = through_checkpoint(a, make(name, np.zeros(3), 0.3, seed=4, popsize=2))
    for _ in range(30):
        Xa, Xb = a.ask(), b.ask()
        np.testing.assert_array_equal(Xa, Xb)
        a.tell(Xa, f(Xa))
        b.tell(Xb, f(Xb))
    np.testing.assert_array_equal(a.mean, b.mean)
    assert (a.evaluations, a.generation, a.best_f, a.sigma) == (
        b.evaluations,
        b.generation,
        b.best_f,
        b.sigma,
    )


def test_nelder_mead_refuses_a_record_scipy_could_not_have_made():
    es = _run(make("nelder-mead", np.ones(2), 0.5, xatol=1e-2, fatol=1e-2), PROBLEMS["sphere"], 200)
    assert es.should_stop()
    state = es.state_dict()
    longer = {**state, "fitness_history": np.append(state["fitness_history"], -1.0)}
    with pytest.raises(CheckpointError, match="SciPy returned after"):
        make("nelder-mead", np.ones(2), 0.5, xatol=1e-2, fatol=1e-2).load_state_dict(longer)
    nan = {**state, "fitness_history": np.full(3, np.nan)}
    with pytest.raises(CheckpointError, match="NaN"):
        make("nelder-mead", np.ones(2), 0.5).load_state_dict(nan)


@pytest.mark.parametrize("name", BASELINES)
def test_nan_and_inf_fitness_never_raise(name):
    es = make(name, np.full(3, 2.0), 1.0, seed=0, popsize=3)
    specials = [np.nan, np.inf, -np.inf]
    for g in range(150):
        X = es.ask()
        f = -PROBLEMS["sphere"](X)
        f[g % 3] = specials[g % 3] if g % 5 else f[g % 3]
        if g % 7 == 0:
            f[:] = specials[g % 3]
        es.tell(X, f)
        es.should_stop()
    assert np.isfinite(es.mean).all() and np.isfinite(es.ask()).all()


@pytest.mark.parametrize("dim", [2, 5])
def test_nelder_mead_reaches_1e_8_on_the_sphere(dim):
    x0 = np.random.default_rng(0).uniform(-3, 3, dim)  # off the axes: no lucky symmetric simplex
    res = minimize("nelder-mead", PROBLEMS["sphere"], x0, 1.0, target=1e-8, max_evals=5000)
    assert res.reached_target and res.evaluations < 1000  # measured: 2-D 58, 5-D 220


@pytest.mark.parametrize("dim", [2, 5])
def test_hill_climbing_and_annealing_reach_a_looser_target_on_the_sphere(dim):
    x0 = np.full(dim, 2.0)
    hill = minimize("hill-climbing", PROBLEMS["sphere"], x0, 1.0, seed=1, target=1e-6, max_evals=5000)
    anneal = minimize("simulated-annealing", PROBLEMS["sphere"], x0, 1.0, seed=1, target=1e-4, max_evals=5000)
    assert hill.reached_target and anneal.reached_target  # measured: 2-D 147 and 269, 5-D 305 and 969


@pytest.mark.parametrize(
    "name,options,match",
    [
        ("hill-climbing", {"damping": 0.0}, "damping"),
        ("hill-climbing", {"success_rule": "yes"}, "success_rule"),
        ("simulated-annealing", {"cooling_rate": 1.0}, "cooling_rate"),
        ("simulated-annealing", {"initial_temperature": -1.0}, "initial_temperature"),
        ("simulated-annealing", {"step_power": float("nan")}, "step_power"),
        ("simulated-annealing", {"schedule": "fast"}, "schedule"),
        ("nelder-mead", {"xatol": -1.0}, "xatol"),
        ("nelder-mead", {"maxfev": 0}, "maxfev"),
        ("nelder-mead", {"adaptive": 1}, "adaptive"),
        ("nelder-mead", {"popsize": 2.5}, "popsize"),
    ],
)
def test_bad_options_get_one_line_errors(name, options, match):
    with pytest.raises(ConfigError, match=match) as info:
        make(name, np.zeros(2), 1.0, **options)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", BASELINES)
def test_policy_search_resumes_exactly(name, tmp_path):
    from rlcanon.es.policy import ESPolicyConfig, search
    from rlcanon.run.logger import read_metrics
    from rlcanon.runs import resume

    def config(generations):
        return ESPolicyConfig(strategy=name, generations=generations, popsize=4, eval_interval=3, seed=2)

    full = search(config(8), tmp_path / "full", progress=False)
    search(config(4), tmp_path / "part", progress=False)
    resumed = resume(tmp_path / "part", generations=8, progress=False)
    curve = [read_metrics(tmp_path / d)["charts/episodic_return"] for d in ("part", "full")]
    assert curve[0] == curve[1] and len(curve[0]) == 8
    np.testing.assert_array_equal(resumed.agent.es.mean, full.agent.es.mean)
