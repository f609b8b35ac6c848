"""The one harness for every family: run directory, logger, checkpoints, resume, periodic and
final evaluation, summary, NaN guard and progress bar."""
