"""The one env factory (``rlcanon.envs.factory``), the shared collector, the wrappers, and our own
environments (registered as ``rlcanon/...`` Gymnasium ids)."""
