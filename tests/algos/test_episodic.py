"""Episodic control by hand: MFEC's max-return table, its exact and k-NN reads, LRU replacement."""

import numpy as np
import pytest
import torch

from rlcanon.algos.mfec import discounted_returns, read_values, update_table
from rlcanon.nets.knn import ActionMemories


def _keys(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_mfec_update_keeps_the_max_return():
    mem = ActionMemories(n_actions=2, capacity=10, key_dim=2)
    update_table(mem, 0, _keys([0, 0], [1, 1], [0, 0]), np.array([1.0, 2.0, 5.0]))  # repeated key: max 5
    values, _ = read_values(mem, 0, _keys([0, 0], [1, 1]), k=1)
    np.testing.assert_allclose(values.numpy(), [5.0, 2.0])
    update_table(mem, 0, _keys([0, 0], [1, 1]), np.array([3.0, 7.0]))  # lower return keeps 5, higher wins
    values, _ = read_values(mem, 0, _keys([0, 0], [1, 1]), k=1)
    np.testing.assert_allclose(values.numpy(), [5.0, 7.0])
    assert mem.size(0) == 2 and mem.size(1) == 0


def test_mfec_reads_the_mean_of_the_k_nearest_for_unseen_keys_and_zero_when_empty():
    mem = ActionMemories(n_actions=1, capacity=10, key_dim=1)
    update_table(mem, 0, _keys([0.0], [1.0], [10.0]), np.array([2.0, 4.0, 100.0]))
    values, _ = read_values(mem, 0, _keys([0.4]), k=2)  # nearest: 0 and 1
    assert values.item() == pytest.approx(3.0)
    empty = ActionMemories(n_actions=1, capacity=10, key_dim=1)
    assert read_values(empty, 0, _keys([0.4]), k=2)[0].item() == 0.0


def test_mfec_replaces_the_least_recently_used_key_at_capacity():
    mem = ActionMemories(n_actions=1, capacity=2, key_dim=1)
    update_table(mem, 0, _keys([0.0]), np.array([1.0]))
    update_table(mem, 0, _keys([1.0]), np.array([2.0]))
    update_table(mem, 0, _keys([0.0]), np.array([3.0]))  # touches key 0: key 1 is now the oldest
    update_table(mem, 0, _keys([5.0]), np.array([9.0]))
    keys, _ = mem.stored(0)
    assert sorted(keys[:, 0].tolist()) == [0.0, 5.0]


def test_discounted_returns_by_hand():
    np.testing.assert_allclose(discounted_returns(np.array([1.0, 0.0, 2.0]), 0.5), [1.5, 1.0, 2.0])
