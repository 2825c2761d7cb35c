"""The RL sizing experiment: the gymnasium environment (gymnasium's own checker), its reward against an
independent computation from the closes, the batched market against the environment, a short PPO run that
learns a learnable market deterministically, and the walk-forward runner on a slice of the bundled history."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pytest

pytest.importorskip("gymnasium", reason="gymnasium is in the test and rl extras (pip install -e '.[test]')")
pytest.importorskip("jax", reason="jax and optax are in the test and rl extras")

from gymnasium.utils.env_checker import check_env

from operators.rl.env import SizingEnv
from operators.rl.market import SIZES, VecMarket, make_market
from operators.rl.ppo import PpoConfig, train_ppo

SMALL = PpoConfig(n_envs=8, n_steps=128, episode_len=256, updates=12, minibatch=256)


@cache
def _real(n: int = 3000):
    from flows.rl_experiment import load

    bars, feats, sigs = load(max_bars=n)
    F, s, b = feats[0], sigs[0], bars[0]
    w = int(np.flatnonzero(np.isfinite(F).all(axis=1))[0])
    mean, scale = np.nanmean(F[w:], axis=0), np.nanstd(F[w:], axis=0)
    return make_market(
        [(F[w:], s[w:], b.close[w:]), (feats[1][w:], sigs[1][w:], bars[1].close[w:])], mean, scale
    ), b.close[w:]


def _learnable(T: int = 6000, seed: int = 0):
    """A market where the rule's signal predicts the next return (edge 0.4 % a bar against 8.5 bps costs)."""
    rng = np.random.default_rng(seed)
    sig = rng.choice([-1.0, 0.0, 1.0], size=T)
    ret = 0.004 * sig + rng.normal(scale=0.004, size=T)
    close = 100 * np.cumprod(np.r_[1.0, 1 + ret[:-1]])
    return make_market([(rng.normal(size=(T, 3)), sig, close)], np.zeros(3), np.ones(3)), sig


def test_gymnasium_env_checker_passes_on_the_bundled_history():
    m, _ = _real()
    env = SizingEnv(m, episode_len=64)
    check_env(env, skip_render_check=True)
    obs, _info = env.reset(seed=3)
    assert obs.shape == (14,) and env.observation_space.contains(obs)
    with pytest.raises(ValueError):
        env.step(len(SIZES))


def test_reward_is_the_position_return_after_costs_from_the_closes():
    m, close = _real()
    env = SizingEnv(m, episode_len=200)
    env.reset(options={"row": 100})
    rng = np.random.default_rng(5)
    acts = rng.integers(0, len(SIZES), size=200)
    steps = [env.step(a) for a in acts]
    got = [s[1] for s in steps]
    pos = np.r_[0.0, SIZES[acts]]
    want = 0.5 * (pos[1:] * (close[101:301] / close[100:300] - 1) - 8.5e-4 * np.abs(np.diff(pos)))
    assert np.allclose(got, want, rtol=0, atol=1e-15)
    assert [s[2] for s in steps] == [False] * 199 + [True]  # the episode ends after 200 bars
    # the batched market the PPO rollouts use pays the same rewards on the same rows
    vm = VecMarket(m, 1, 200, seed=1)
    vm.row[:], vm.end[:], vm.pos[:] = 100, 300, 0.0
    vr = [float(vm.step(np.array([a]))[0][0]) for a in acts[:199]]
    assert np.allclose(vr, want[:199], rtol=0, atol=1e-15)


def test_short_ppo_run_learns_a_learnable_market_deterministically():
    m, sig = _learnable()
    pol = train_ppo(m, SMALL)
    hist = [h["reward_per_step"] for h in pol.info["history"]]
    assert np.mean(hist[-3:]) > np.mean(hist[:3]) + 5e-4  # the rollouts earn more as it learns
    tg = pol.run(m, 0, 3000)
    assert np.corrcoef(tg, sig[:3000])[0, 1] > 0.6  # it sizes with the predictive signal
    # greedy targets through the gymnasium environment are the same as Policy.run
    env = SizingEnv(m, episode_len=300)
    obs, _ = env.reset(options={"row": 0})
    via_env = []
    for _ in range(300):
        obs, *_ = env.step(int(pol.act(obs)[0]))
        via_env.append(env.pos)
    assert via_env == tg[:300].tolist()
    again = train_ppo(m, SMALL)
    assert all(np.array_equal(again.actor[k], pol.actor[k]) for k in pol.actor)
    other = train_ppo(m, replace(SMALL, seed=12, updates=2))
    assert not np.array_equal(other.actor["W0"], pol.actor["W0"])


def test_walk_forward_runner_reports_every_row_after_costs():
    from flows.rl_experiment import render, run

    r = run(max_bars=10_000, ppo=replace(SMALL, updates=3), n_folds=1)
    assert r["n_folds"] == 1 and set(r["table"]) == {"ppo_sizing", "trend_rule_sizing", "buy_and_hold"}
    for t in r["table"].values():
        assert np.isfinite(t["total_return_frac"]) and t["fills"] >= 1 and t["fees_frac_per_year"] > 0
    assert r["table"]["buy_and_hold"]["fills"] == 2  # one entry per symbol, held to the end
    p, rule, bh = (r["table"][k] for k in ("ppo_sizing", "trend_rule_sizing", "buy_and_hold"))
    assert r["ppo_beats_rule"] == (p["sharpe"] > rule["sharpe"])
    assert r["ppo_wins"] == (
        p["sharpe"] > rule["sharpe"] and p["sharpe"] > max(bh["sharpe"], 0) and p["total_return_frac"] > 0
    )
    assert r["decision"].startswith("wins") == r["ppo_wins"]
    assert "ppo_sizing" in render(r)


def test_several_seeds_ship_only_when_every_seed_wins():
    from flows.rl_experiment import run_seeds

    r = run_seeds((11, 12), max_bars=10_000, ppo=replace(SMALL, updates=2), n_folds=1)
    assert set(r["table"]) == {"ppo_sizing_seed11", "ppo_sizing_seed12", "trend_rule_sizing", "buy_and_hold"}
    assert r["ppo_wins_every_seed"] == all(one["ppo_wins"] for one in r["runs"].values())
    assert r["decision"].startswith("ship") == r["ppo_wins_every_seed"]
    lo, hi = r["ppo_return_range"]
    assert lo <= r["table"]["ppo_sizing_seed11"]["total_return_frac"] <= hi
