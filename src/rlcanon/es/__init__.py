"""Evolution strategies behind one ask/tell interface (fitness is maximised).

    es = rlcanon.es.make("cma-es", x0=np.zeros(10), sigma0=0.5, seed=1)
    while ...:
        X = es.ask(); es.tell(X, fitness(X))

``STRATEGIES`` maps names to (class, description); a new strategy is one module and one line here.
"""

from __future__ import annotations

import inspect
from typing import Any

from rlcanon.errors import ConfigError
from rlcanon.es.baselines import HillClimbing, SimulatedAnnealing
from rlcanon.es.cmaes import CMAES
from rlcanon.es.nelder_mead import NelderMead
from rlcanon.es.nes import SNES, XNES
from rlcanon.es.openai_es import OpenAIES
from rlcanon.es.problems import PROBLEMS, get_problem
from rlcanon.es.restarts import RestartCMAES
from rlcanon.es.simple import CEM, SimpleGaussianES

STRATEGIES: dict[str, tuple[type, str]] = {
    "cma-es": (CMAES, "CMA-ES with active covariance update and IPOP restarts (Hansen 2016)"),
    "simple-es": (SimpleGaussianES, "simple Gaussian ES: elite mean, sigma about the old mean"),
    "cem": (CEM, "cross-entropy method with a diagonal Gaussian"),
    "xnes": (XNES, "exponential natural ES (Wierstra et al. 2014)"),
    "snes": (SNES, "separable natural ES (Wierstra et al. 2014)"),
    "openai-es": (OpenAIES, "OpenAI-ES: mirrored sampling, centred ranks, Adam (Salimans et al. 2017)"),
    "bipop-cma-es": (RestartCMAES, "CMA-ES that restarts itself, BIPOP regimes (Hansen 2009)"),
    "hill-climbing": (HillClimbing, "(1+lambda) hill climbing with the 1/5th success rule (Rechenberg 1973)"),
    "simulated-annealing": (SimulatedAnnealing, "simulated annealing, Metropolis rule (Kirkpatrick 1983)"),
    "nelder-mead": (NelderMead, "Nelder-Mead simplex (1965), SciPy's solver behind ask/tell"),
}


def make(name: str, x0: Any, sigma0: float, seed: int = 0, **options: Any) -> Any:
    """A strategy with ``ask()`` and ``tell(population, fitness)``; fitness is maximised."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}")
    params = inspect.signature(STRATEGIES[name][0]).parameters
    accepted = [p for p in params if p not in ("x0", "sigma0", "seed")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"strategy {name!r} has no option {unknown[0]!r}; its options are {accepted}")
    try:
        return STRATEGIES[name][0](x0, sigma0, seed=seed, **options)
    except TypeError as exc:
        raise ConfigError(f"bad option for strategy {name!r}: {exc}") from None


__all__ = ["PROBLEMS", "STRATEGIES", "get_problem", "make"]
