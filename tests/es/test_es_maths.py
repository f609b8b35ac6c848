"""ES maths against hand computation and the CMA-ES tutorial's constants."""

import math

import numpy as np
import pytest

from rlcanon.errors import ConfigError
from rlcanon.es import STRATEGIES, make
from rlcanon.es.cmaes import CMAConstants
from rlcanon.es.openai_es import OpenAIES, noise, population_from_seeds
from rlcanon.es.shaping import centered_ranks, nes_utilities, utilities_for


def test_centered_ranks_by_hand():
    np.testing.assert_allclose(
        centered_ranks(np.array([10.0, -3.0, 7.0, 2.0, 5.0])), [0.5, -0.5, 0.25, -0.25, 0.0]
    )
    # NaN ranks lowest
    np.testing.assert_allclose(centered_ranks(np.array([1.0, np.nan, 0.0])), [0.5, -0.5, 0.0])


def test_nes_utilities_by_hand():
    # n = 4: raw = max(0, ln 3 - ln k) = (ln 3, ln 1.5, 0, 0); normalised, minus 1/4
    raw = np.array([math.log(3), math.log(1.5), 0.0, 0.0])
    np.testing.assert_allclose(nes_utilities(4), raw / raw.sum() - 0.25)
    assert nes_utilities(10).sum() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(utilities_for(np.array([1.0, 3.0, 2.0, 0.0])), nes_utilities(4)[[2, 0, 1, 3]])


def test_simple_es_update_by_hand():
    es = make("simple-es", np.zeros(2), 1.0, popsize=4, elite_fraction=0.5)
    pop = np.array([[1.0, 1.0], [3.0, -1.0], [0.0, 0.0], [-2.0, 5.0]])
    es.tell(pop, np.array([4.0, 3.0, 1.0, 0.0]))  # elite: rows 0 and 1
    np.testing.assert_allclose(es.mean, [2.0, 0.0])
    # variance about the OLD mean (0, 0): mean of (1, 1, 9, 1) = 3
    assert es.sigma == pytest.approx(math.sqrt(3.0))


def test_cem_update_by_hand():
    es = make("cem", np.zeros(2), 1.0, popsize=4, elite_fraction=0.5)
    pop = np.array([[1.0, 1.0], [3.0, -1.0], [0.0, 0.0], [-2.0, 5.0]])
    es.tell(pop, np.array([4.0, 3.0, 1.0, 0.0]))
    np.testing.assert_allclose(es.mean, [2.0, 0.0])
    np.testing.assert_allclose(es.var, [1.0, 1.0])  # about the NEW mean


def test_cma_constants_n10_match_the_tutorial():
    """Hansen (2016), Table 1, evaluated by hand for n = 10."""
    k = CMAConstants.for_dim(10)
    assert (k.popsize, k.mu) == (10, 5)  # 4 + floor(3 ln 10) = 10
    w = math.log(5.5) - np.log(np.arange(1, 6))
    mueff = w.sum() ** 2 / (w**2).sum()
    assert k.mueff == pytest.approx(mueff) and k.mueff == pytest.approx(3.16730, abs=1e-5)
    assert k.c_sigma == pytest.approx((mueff + 2) / (10 + mueff + 5)) and k.c_sigma == pytest.approx(
        0.284429, abs=1e-6
    )
    assert k.d_sigma == pytest.approx(1 + k.c_sigma)  # sqrt((mueff-1)/11) < 1, so the max term is 0
    assert k.c_c == pytest.approx((4 + mueff / 10) / (14 + 2 * mueff / 10))
    assert k.c_1 == pytest.approx(2 / (11.3**2 + mueff)) and k.c_1 == pytest.approx(0.0152838, abs=1e-6)
    assert k.c_mu == pytest.approx(2 * (0.25 + mueff + 1 / mueff - 2) / (12**2 + mueff))
    assert k.weights[:5].sum() == pytest.approx(1.0)
    assert (k.weights[5:] < 0).all() and (np.diff(k.weights) < 0).all()
    assert k.chi_n == pytest.approx(math.sqrt(10) * (1 - 1 / 40 + 1 / 2100))


def test_cma_eigendecomposition_gap():
    """Default: purecma's 0.5 / (n (c1 + cmu)) generations; eigen_gap_factor=0.1 is the tutorial's
    and pycma's 1 / (10 n (c1 + cmu)). Both rounded up (pycma decomposes once count >= last + gap)."""
    for n, default, tutorial in ((10, 2, 1), (100, 6, 2)):
        k = CMAConstants.for_dim(n)
        gap = 1 / (n * (k.c_1 + k.c_mu))
        assert k.eigen_every == default == math.ceil(0.5 * gap)
        assert CMAConstants.for_dim(n, eigen_gap_factor=0.1).eigen_every == tutorial == math.ceil(0.1 * gap)


def test_openai_es_noise_is_rebuilt_from_seeds_and_mirrored():
    seeds = np.array([3, 99, 12345])
    np.testing.assert_array_equal(noise(seeds, 5), noise(seeds, 5))
    pop = population_from_seeds(np.ones(5), 0.1, seeds)
    np.testing.assert_allclose(pop[0::2] + pop[1::2], 2.0)  # mirrored around the mean


def test_openai_es_gradient_matches_smoothed_gradient():
    """For f(x) = -||x - c||^2 the Gaussian-smoothed gradient is -2 (x - c); the mirrored estimator
    with raw returns is unbiased, and with centred ranks points the same way."""
    dim, c = 5, np.arange(5.0)
    es = OpenAIES(np.zeros(dim), 0.1, seed=0, popsize=4000, weight_decay=0.0)
    X = es.ask()
    f = -((X - c) ** 2).sum(axis=1)
    eps = noise(es.seeds, dim)
    raw = ((f[0::2] - f[1::2]) / (2 * 0.1)) @ eps / (len(es.seeds))
    np.testing.assert_allclose(raw, 2 * c, atol=0.05 * np.linalg.norm(c))
    g = es.gradient(f)
    assert np.dot(g, c) / (np.linalg.norm(g) * np.linalg.norm(c)) > 0.99


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_bad_input(name):
    with pytest.raises(ConfigError, match="dimension"):
        make(name, np.zeros(0), 1.0)
    with pytest.raises(ConfigError, match="sigma0"):
        make(name, np.zeros(3), 0.0)
    one_step_methods = ("hill-climbing", "simulated-annealing", "nelder-mead")  # popsize 1 is their default
    with pytest.raises(ConfigError, match="popsize"):
        make(name, np.zeros(3), 1.0, popsize=0 if name in one_step_methods else 1)
    es = make(name, np.zeros(3), 1.0)
    with pytest.raises(ConfigError, match="fitness values"):
        es.tell(es.ask(), np.zeros(es.popsize + 1))


def test_cma_rejects_a_negative_eigen_gap():
    with pytest.raises(ConfigError, match="eigen_gap_factor"):
        make("cma-es", np.zeros(3), 1.0, eigen_gap_factor=-1.0)


def test_unknown_names():
    from rlcanon.es import get_problem

    with pytest.raises(ConfigError, match="unknown strategy"):
        make("cma-xs", np.zeros(2), 1.0)
    with pytest.raises(ConfigError, match="unknown problem"):
        get_problem("sphear")
