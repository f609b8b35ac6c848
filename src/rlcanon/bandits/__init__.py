"""Multi-armed bandits: problems, solvers vectorised over many runs, regret statistics.

``SOLVERS`` maps each name to (factory, one-line description). A new solver is one module in this
package and one line here; the CLI, ``rlcanon list`` and the tests pick it up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlcanon.bandits.bayes_ucb import BayesUCB
from rlcanon.bandits.epsilon_greedy import EpsilonGreedy
from rlcanon.bandits.gradient import GradientBandit
from rlcanon.bandits.nonstationary import DiscountedUCB, SlidingWindowUCB
from rlcanon.bandits.problems import BanditProblem, lai_robbins_constant
from rlcanon.bandits.simulate import BanditResult, simulate
from rlcanon.bandits.softmax import Boltzmann
from rlcanon.bandits.thompson import BetaThompson, GaussianThompson
from rlcanon.bandits.ucb import UCB1
from rlcanon.errors import ConfigError

SOLVERS: dict[str, tuple[Callable[..., Any], str]] = {
    "epsilon-greedy": (EpsilonGreedy, "explore with fixed probability epsilon (default 0.1)"),
    "epsilon-decay": (
        lambda decay_c=5.0, **kw: EpsilonGreedy(decay_c=decay_c, **kw),
        "epsilon_t = min(1, c K / t) (Auer et al. 2002)",
    ),
    "optimistic-greedy": (
        lambda initial_value=1.0, step_size=0.1, **kw: EpsilonGreedy(
            epsilon=0.0, initial_value=initial_value, step_size=step_size, **kw
        ),
        "greedy with optimistic initial values and a constant step size",
    ),
    "ucb1": (UCB1, "mean + sqrt(2 ln t / N) (Auer et al. 2002)"),
    "bayes-ucb": (BayesUCB, "Beta posterior quantile at level 1 - 1/t (Kaufmann et al. 2012)"),
    "thompson": (BetaThompson, "Beta-Bernoulli Thompson sampling"),
    "gaussian-thompson": (GaussianThompson, "Gaussian Thompson sampling (Agrawal & Goyal 2013)"),
    "softmax": (Boltzmann, "Boltzmann exploration with temperature tau (default 0.1)"),
    "gradient": (GradientBandit, "gradient bandit with average-reward baseline (Sutton & Barto 2.8)"),
    "sw-ucb": (SlidingWindowUCB, "sliding-window UCB for changing means (Garivier & Moulines 2011)"),
    "discounted-ucb": (DiscountedUCB, "discounted UCB for changing means (Garivier & Moulines 2011)"),
}


def make_solver(name: str, **params: Any) -> Any:
    if name not in SOLVERS:
        raise ConfigError(f"unknown bandit solver {name!r}; choose one of {sorted(SOLVERS)}")
    try:
        return SOLVERS[name][0](**params)
    except (TypeError, ConfigError) as exc:  # an unknown name, or a value out of range
        raise ConfigError(f"bad parameter for solver {name!r}: {exc}") from None


__all__ = ["SOLVERS", "BanditProblem", "BanditResult", "lai_robbins_constant", "make_solver", "simulate"]
