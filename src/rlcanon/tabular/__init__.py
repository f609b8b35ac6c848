"""Tabular RL: finite MDPs with known models, exact DP, and model-free control."""

from rlcanon.tabular.learn import METHODS, TabularConfig, TabularResult, train

__all__ = ["METHODS", "TabularConfig", "TabularResult", "train"]
