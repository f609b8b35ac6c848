"""rlcanon: the reinforcement-learning canon as one fast, tested library.

Small RL matrices gain nothing from many BLAS threads and can be far slower with them on a busy
machine, so importing rlcanon asks for one BLAS thread unless the user has chosen a number.
"""

from rlcanon.core.threads import default_blas_threads

default_blas_threads()

__version__ = "0.1.0"

__all__ = ["__version__"]
