"""Replay FIFO capacity, n-step folding in the buffer, sum-tree proportions."""

import numpy as np
import pytest

from rlcanon.buffers.prioritized import PrioritizedReplayBuffer
from rlcanon.buffers.replay import ReplayBuffer
from rlcanon.buffers.sumtree import SumTree
from rlcanon.buffers.transition import Transition


def tr(i, rew=1.0, term=False, trunc=False, valid=True, n=1):
    o = np.full((n, 1), float(i), dtype=np.float32)
    return Transition(
        o,
        np.zeros(n, np.int64),
        np.full(n, rew, np.float32),
        o + 1,
        np.full(n, term),
        np.full(n, trunc),
        np.full(n, valid),
    )


def test_fifo_capacity_overwrites_oldest():
    buf = ReplayBuffer(3, 1, ((1,), np.float32), ((), np.int64))
    for i in range(5):
        buf.add(tr(i))
    assert len(buf) == 3
    assert sorted(buf.obs[:, 0, 0].tolist()) == [2.0, 3.0, 4.0]
    idx = buf.sample_indices(np.random.default_rng(0), 500)
    assert set(buf.batch(idx)["obs"][:, 0].tolist()) == {2.0, 3.0, 4.0}


def test_invalid_autoreset_steps_are_never_sampled():
    buf = ReplayBuffer(10, 1, ((1,), np.float32), ((), np.int64))
    buf.add(tr(0, term=True))
    buf.add(tr(99, valid=False))
    buf.add(tr(1))
    idx = buf.sample_indices(np.random.default_rng(0), 1000)
    assert 99.0 not in buf.batch(idx)["obs"][:, 0]


def test_n_step_targets_in_buffer():
    buf = ReplayBuffer(10, 1, ((1,), np.float32), ((), np.int64), n_step=3, gamma=0.5)
    buf.add(tr(0, rew=1.0))
    buf.add(tr(1, rew=2.0, term=True))
    buf.add(tr(2, valid=False))
    buf.add(tr(3, rew=4.0))
    b = buf.batch(np.array([0, 1, 3]))
    np.testing.assert_allclose(b["rewards"], [1 + 0.5 * 2, 2.0, 4.0])
    # episode terminated inside both first windows: no bootstrap; the last one is cut by the buffer
    # head and bootstraps after one step
    np.testing.assert_allclose(b["discounts"], [0.0, 0.0, 0.5])
    np.testing.assert_allclose(b["next_obs"][:, 0], [2.0, 2.0, 4.0])


def test_episode_boundary_after_restore_stops_n_step_windows():
    # a restore restarts the environments: the rows stored next belong to new episodes
    buf = ReplayBuffer(10, 1, ((1,), np.float32), ((), np.int64), n_step=3, gamma=0.5)
    buf.add(tr(0, rew=1.0))
    buf.add(tr(1, rew=2.0))
    buf.mark_episode_boundary()
    buf.add(tr(10, rew=100.0))
    buf.add(tr(11, rew=100.0))
    b = buf.batch(np.array([0, 1]))
    # truncated at row 1: both bootstrap from row 1's next observation, none sees reward 100
    np.testing.assert_allclose(b["rewards"], [1 + 0.5 * 2, 2.0])
    np.testing.assert_allclose(b["discounts"], [0.25, 0.5])
    np.testing.assert_allclose(b["next_obs"][:, 0], [2.0, 2.0])
    empty = ReplayBuffer(4, 2, ((1,), np.float32), ((), np.int64))
    empty.mark_episode_boundary()
    assert not empty.dones.any()


def test_sumtree_prefix_search_is_exact():
    tree = SumTree(4)
    tree.update(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    assert tree.total == 10.0
    found = tree.find(np.array([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99]))
    assert found.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_sumtree_sampling_proportions():
    tree = SumTree(5)
    p = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    tree.update(np.arange(5), p)
    draws = np.concatenate([tree.sample(np.random.default_rng(s), 1000) for s in range(100)])
    freq = np.bincount(draws, minlength=5) / len(draws)
    np.testing.assert_allclose(freq, p / p.sum(), atol=0.005)


def test_prioritized_weights_and_priority_updates():
    buf = PrioritizedReplayBuffer(8, 1, ((1,), np.float32), ((), np.int64), alpha=1.0)
    for i in range(4):
        buf.add(tr(i))
    buf.update_priorities(np.arange(4), np.array([1.0, 1.0, 1.0, 7.0]) - 1e-6)
    idx, w = buf.sample_prioritized(np.random.default_rng(0), 4000, beta=1.0)
    assert np.mean(idx == 3) == pytest.approx(0.7, abs=0.03)
    # with beta = 1, weight is 1 / (N P(i)) normalised by the max: rare samples weigh 1
    assert w[idx == 3].max() == pytest.approx((4 * 0.1) / (4 * 0.7), rel=1e-3)
    assert w.max() == pytest.approx(1.0)


def test_continuous_actions_and_extra_fields_are_stored_exactly():
    buf = ReplayBuffer(8, 2, ((3,), np.float32), ((2,), np.float32), extras={"mask": ((4,), np.uint8)})
    obs = np.ones((2, 3), np.float32)
    act = np.array([[0.3, -0.7], [1.5, 2.25]], np.float32)
    mask = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], np.uint8)
    t = Transition(
        obs, act, np.ones(2, np.float32), obs, np.zeros(2, bool), np.zeros(2, bool), np.ones(2, bool)
    )
    buf.add(t, mask=mask)
    batch = buf.batch(np.array([0, 1]))
    np.testing.assert_array_equal(batch["actions"], act)  # 0.3 stays 0.3 (it was cast to int64 once)
    np.testing.assert_array_equal(batch["mask"], mask)


def test_sequences_are_consecutive_steps_of_one_env_with_episode_starts():
    buf = ReplayBuffer(20, 1, ((1,), np.float32), ((), np.int64))
    for i in range(12):
        buf.add(tr(i, term=(i == 4)))
    seq = buf.sample_sequences(np.random.default_rng(0), 64, 4)
    assert seq["obs"].shape == (64, 4, 1)
    np.testing.assert_array_equal(np.diff(seq["obs"][:, :, 0], axis=1), 1.0)  # consecutive steps
    starts = seq["episode_start"]
    expected = np.zeros_like(starts)
    expected[:, 0] = True  # a window's first step always starts the recurrent state afresh
    expected[:, 1:] = seq["obs"][:, 1:, 0] == 5.0  # the step after the terminal step 4
    np.testing.assert_array_equal(starts, expected)
    assert (seq["obs"][:, :, 0] == 5.0).any()  # the case was drawn


def test_prioritized_state_round_trip_recomputes_the_tree():
    buf = PrioritizedReplayBuffer(8, 1, ((1,), np.float32), ((), np.int64), alpha=1.0)
    for i in range(6):
        buf.add(tr(i))
    buf.update_priorities(np.array([0, 1, 2]), np.array([0.5, 2.0, 4.0]))
    arrays = {k: np.array(v) for k, v in buf.state_arrays().items()}
    other = PrioritizedReplayBuffer(8, 1, ((1,), np.float32), ((), np.int64), alpha=1.0)
    other.load_state_arrays(arrays)
    np.testing.assert_allclose(other.tree.tree, buf.tree.tree)
    assert other.tree.total == pytest.approx(buf.tree.total)


def test_rollout_buffer_gae_and_minibatches_skip_autoreset_steps():
    from rlcanon.buffers.rollout import RolloutBuffer
    from rlcanon.core.returns import gae

    T, N = 4, 2
    buf = RolloutBuffer(T, N, ((1,), np.float32), ((), np.int64))
    for t in range(T):
        valid = np.array([t != 2, True])
        trans = Transition(
            np.zeros((N, 1), np.float32),
            np.zeros(N, np.int64),
            np.full(N, 1.0, np.float32),
            np.zeros((N, 1), np.float32),
            np.array([t == 1, False]),
            np.zeros(N, bool),
            valid,
        )
        buf.add(t, np.full((N, 1), t, np.float32), np.full(N, t), trans)
    buf["values"][:] = np.arange((T + 1) * N, dtype=np.float32).reshape(T + 1, N) / 10
    adv, ret = buf.advantages(0.9, 0.8)
    want_adv, want_ret = gae(buf["rewards"], buf["values"], buf["terminated"], buf["dones"], 0.9, 0.8)
    np.testing.assert_allclose(adv, want_adv)
    np.testing.assert_allclose(ret, want_ret)
    seen = np.concatenate(list(buf.minibatches(np.random.default_rng(0), 3)))
    assert sorted(seen.tolist()) == sorted(np.flatnonzero(buf["valid"].reshape(-1)).tolist())
    assert 2 * N not in seen  # step 2 of env 0 is an autoreset step
