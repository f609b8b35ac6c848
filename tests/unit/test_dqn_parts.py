"""DQN internals: the target net changes only every C updates; epsilon schedule; frame stack."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcanon.algos.dqn import DQNAgent, DQNConfig


def _agent(**kw):
    cfg = DQNConfig(
        env_id="CartPole-v1",
        learning_starts=0,
        batch_size=8,
        buffer_size=1000,
        train_freq=16,
        gradient_steps=1,
        total_timesteps=10_000,
        **kw,
    )
    return DQNAgent(cfg, cfg.env_id, np.random.default_rng(0))


def _params(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()]).clone()


def test_target_net_changes_only_every_c_updates():
    agent = _agent(target_update_interval=5)
    agent._collect(64)
    start = _params(agent.q_target)
    for k in range(1, 11):
        agent._train(1)
        now = _params(agent.q_target)
        if k % 5 == 0:
            torch.testing.assert_close(now, _params(agent.q))  # refreshed: a copy of the online net
            assert not torch.equal(now, start)
            start = now
        else:
            assert torch.equal(now, start)


def test_polyak_target_moves_tau_every_c_updates():
    agent = _agent(target_update_interval=2, tau=0.25)
    agent._collect(64)
    old = _params(agent.q_target)
    agent._train(1)
    assert torch.equal(_params(agent.q_target), old)  # not yet C updates
    agent._train(1)
    torch.testing.assert_close(_params(agent.q_target), 0.25 * _params(agent.q) + 0.75 * old)


@pytest.fixture(params=[True, False], ids=["fused", "torch"])
def fused_mode(request):
    from rlcanon import fused

    before = fused.fused_enabled()
    fused.set_fused(request.param)
    yield request.param
    fused.set_fused(before)


def test_batched_targets_match_per_step_targets(fused_mode):
    """The chunked fast path (targets from one forward pass) equals step-by-step training, with the
    fused kernels and with plain torch autograd."""
    a, b = _agent(target_update_interval=4), _agent(target_update_interval=4)
    a._collect(64)
    b._collect(64)
    b.buffer = a.buffer
    b.q.load_state_dict(a.q.state_dict())
    b.q_target.load_state_dict(a.q_target.state_dict())
    b.update.optimizer.load_state_dict(a.update.optimizer.state_dict())
    a.rng, b.rng = np.random.default_rng(5), np.random.default_rng(5)
    a._train(4)  # one chunk of 4
    all_idx = b.buffer.sample_indices(b.rng, 32)  # the same indices, one step at a time
    for idx in np.split(all_idx, 4):
        batch = b.buffer.batch(idx)
        b._step(*(torch.from_numpy(x) for x in (batch["obs"], batch["actions"], b._targets(batch))), None)
    torch.testing.assert_close(_params(a.q), _params(b.q), rtol=1e-5, atol=1e-6)


def test_integer_vector_observations_are_stored_as_float32(fused_mode):
    # FrozenLake's flattened one-hot observations are int64; the network takes float32
    cfg = DQNConfig(
        env_id="FrozenLake-v1",
        wrappers=("flatten-observation",),
        learning_starts=0,
        batch_size=8,
        train_freq=8,
    )
    agent = DQNAgent(cfg, cfg.env_id, np.random.default_rng(0))
    assert agent.buffer.obs.dtype == np.float32
    for _ in range(4):
        m = agent.iterate()
    assert np.isfinite(m["loss/td"])
    agent.envs.close()


def test_restore_ends_the_stored_episodes_for_n_step_targets(tmp_path):
    from rlcanon.algos.dqn import train
    from rlcanon.runs import load_learner

    cfg = DQNConfig(n_step=3, learning_starts=50, batch_size=8, buffer_size=1000, total_timesteps=300)
    train(cfg, run_dir=tmp_path / "run", progress=False)
    agent, _, _ = load_learner(tmp_path / "run")
    newest = (agent.buffer.pos - 1) % agent.buffer.rows
    assert agent.buffer.dones[newest].all()  # the restarted envs begin new episodes
    assert not agent.buffer.dones[: agent.buffer.pos - 1].all()
    agent.envs.close()


def test_epsilon_schedule_is_linear_then_flat():
    agent = _agent(exploration_fraction=0.5, exploration_initial_eps=1.0, exploration_final_eps=0.1)
    assert agent.epsilon() == 1.0
    agent.global_step = 2500
    assert agent.epsilon() == pytest.approx(0.55)
    agent.global_step = 9000
    assert agent.epsilon() == pytest.approx(0.1)


@pytest.mark.parametrize(
    "flags", [{"double_dqn": True}, {"dueling": True}, {"n_step": 3}, {"prioritized": True}, {"tau": 0.01}]
)
def test_flag_variants_train(flags):
    agent = _agent(**flags)
    m = {}
    for _ in range(5):
        m = agent.iterate()
    assert np.isfinite(m["loss/td"])
    assert dataclasses.asdict(agent.cfg)[next(iter(flags))] == next(iter(flags.values()))


def test_frame_stack_shape_and_order():
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    from rlcanon.envs.factory import make_vec_env

    env = make_vec_env("ALE/Pong-v5", 1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (1, 4, 84, 84) and obs.dtype == np.uint8
    prev = obs
    for _ in range(3):
        obs, *_ = env.step(np.array([0]))
        # the stack shifts by one: oldest frame out at index 0, newest frame in at index -1
        np.testing.assert_array_equal(obs[0, :-1], prev[0, 1:])
        prev = obs
    env.close()


class _ScaledCartPole(gym.Wrapper):
    """CartPole paying -3 per step: a reward that sign-clipping changes."""

    def step(self, action):
        obs, _, term, trunc, info = self.env.step(action)
        return obs, -3.0, term, trunc, info


@pytest.mark.parametrize("clip", [False, True])
def test_clip_reward_stores_the_sign_and_logs_the_true_return(clip):
    cfg = DQNConfig(learning_starts=10_000, batch_size=8, buffer_size=1000, clip_reward=clip)
    agent = DQNAgent(cfg, lambda: _ScaledCartPole(gym.make("CartPole-v1")), np.random.default_rng(0))
    agent._collect(300)
    rows = agent.buffer.filled_rows
    stored = agent.buffer.rewards[:rows][agent.buffer.valid[:rows]]
    assert len(stored) > 250
    np.testing.assert_array_equal(np.unique(stored), [-1.0] if clip else [-3.0])
    returns, lengths = agent.env.stepper.pop_episodes()
    assert returns and np.allclose(returns, -3.0 * np.asarray(lengths))
