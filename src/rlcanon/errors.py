"""User-facing errors. The CLI prints their message on one line and exits non-zero."""

from __future__ import annotations


class RLCanonError(Exception):
    """An error in what the user asked for. The message names the problem and what is allowed."""


class ConfigError(RLCanonError, ValueError):
    """A configuration value is out of range or of the wrong kind."""


class CheckpointError(RLCanonError):
    """A checkpoint or run directory is missing, corrupt, or belongs to something else."""


class TrainingError(RLCanonError):
    """Training cannot go on (for example a NaN loss); the last checkpoint is kept."""


class NonFiniteError(TrainingError):
    """A reward, observation or loss became NaN or infinite."""


class RunBusyError(CheckpointError):
    """Another process is writing the same run directory."""
