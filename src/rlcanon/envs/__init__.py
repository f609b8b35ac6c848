"""The one env factory, the shared collectors and the wrappers."""

from rlcanon.envs.factory import EnvSpecLike, make_vec_env

__all__ = ["EnvSpecLike", "make_vec_env"]
