"""The sizing market: what the policy sees, what it may do and what it earns, after costs (pure numpy).

At the close of bar ``t`` the policy sees ``obs[t]``: the model features (standardized with the training window's
mean and standard deviation, clipped to ±5), the trend rule's wanted position (−1, 0, 1: ``EmaSpreadTrend``'s
defaults, the rule-based signal) and the position it holds; it chooses a target from ``SIZES`` (fraction of the
full position, signed). Reward, in fraction of equity::

    reward_t = f · (a_t · r_{t+1} − c · |a_t − a_{t−1}|)

``r_{t+1} = close_{t+1}/close_t − 1``, ``f`` the position notional at full size (fraction of equity, the
simulator's 0.5), ``c`` the cost of trading one unit of notional (fee + slippage: 8.5 bps, the walk-forward's
simulator). The walk-forward evaluates the chosen targets again in the project's simulator
(``operators.sweep.simulate``: next-open fills, fees, slippage, equity compounding); the reward is its
close-to-close, non-compounding approximation used for learning.

:class:`VecMarket` steps many episodes at once (the PPO rollouts); :class:`~.env.SizingEnv` is one episode as a
gymnasium environment. Both use :func:`step_reward` and :func:`observe`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import overload

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["SIZES", "MarketData", "make_market", "observe", "step_reward", "VecMarket", "OBS_CLIP"]

#: the actions: target position as a fraction of the full position (signed)
SIZES = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
OBS_CLIP = 5.0


@dataclass(frozen=True)
class MarketData:
    """Rows of one or several symbols' bars laid end to end: ``feats`` (T, d) standardized features, ``signal``
    (T,) the rule's target, ``ret`` (T,) the next bar's simple return (NaN at the last bar of each segment),
    ``starts`` the first row of each segment (symbol), ``fraction`` f and ``cost`` c of the module doc."""

    feats: np.ndarray
    signal: np.ndarray
    ret: np.ndarray
    starts: np.ndarray
    fraction: float = 0.5
    cost: float = 8.5e-4

    @property
    def obs_dim(self) -> int:
        d: int = self.feats.shape[1]
        return d + 2

    def segment_end(self, row: int) -> int:
        """One past the last row of ``row``'s segment that has a next return."""
        k = int(np.searchsorted(self.starts, row, side="right"))
        end = int(self.starts[k]) if k < self.starts.size else self.ret.size
        return end - 1


def make_market(
    segments: Iterable[tuple[ArrayLike, ArrayLike, ArrayLike]],
    mean: np.ndarray,
    scale: np.ndarray,
    *,
    fraction: float = 0.5,
    cost: float = 8.5e-4,
) -> MarketData:
    """``segments``: ``(features (T, d), signal (T,), close (T,))`` per symbol, rows where the features are warm;
    ``mean``/``scale`` from the training window."""
    F, S, R, starts = [], [], [], []
    n = 0
    for feats, sig, close in segments:
        z = np.clip(np.nan_to_num((np.asarray(feats, float) - mean) / scale, nan=0.0), -OBS_CLIP, OBS_CLIP)
        c = np.asarray(close, float)
        r = np.full(c.size, np.nan)
        r[:-1] = c[1:] / c[:-1] - 1.0
        F.append(z.astype(np.float32))
        S.append(np.asarray(sig, float))
        R.append(r)
        starts.append(n)
        n += c.size
    return MarketData(np.vstack(F), np.concatenate(S), np.concatenate(R), np.asarray(starts, np.int64), fraction, cost)


def observe(m: MarketData, rows: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Observations (n, d + 2) float32 at ``rows`` holding ``pos``."""
    rows = np.atleast_1d(rows)
    return np.concatenate(
        [m.feats[rows], m.signal[rows, None].astype(np.float32), np.atleast_1d(pos)[:, None].astype(np.float32)], axis=1
    )


@overload
def step_reward(m: MarketData, rows: int, prev: float, new: float) -> float: ...
@overload
def step_reward(m: MarketData, rows: np.ndarray, prev: np.ndarray, new: np.ndarray) -> np.ndarray: ...
def step_reward(
    m: MarketData, rows: int | np.ndarray, prev: float | np.ndarray, new: float | np.ndarray
) -> float | np.ndarray:
    """Reward (fraction of equity) of moving from ``prev`` to ``new`` at the close of ``rows`` (one row, or one
    per episode)."""
    reward: float | np.ndarray = m.fraction * (new * m.ret[rows] - m.cost * np.abs(new - prev))
    return reward


class VecMarket:
    """``n_envs`` episodes of ``episode_len`` bars each, started at seeded random rows of one segment; an episode
    that ends is restarted at a new random row (position 0)."""

    def __init__(self, m: MarketData, n_envs: int, episode_len: int, seed: int) -> None:
        self.m = m
        self.n = n_envs
        self.len = episode_len
        self.rng = np.random.default_rng(seed)
        self.row = np.zeros(n_envs, np.int64)
        self.end = np.zeros(n_envs, np.int64)
        self.pos = np.zeros(n_envs)
        for i in range(n_envs):
            self._reset(i)

    def _reset(self, i: int) -> None:
        m = self.m
        while True:
            seg = int(self.rng.integers(m.starts.size))
            lo = int(m.starts[seg])
            hi = m.segment_end(lo)
            if hi - lo > self.len:
                break
        r = int(self.rng.integers(lo, hi - self.len))
        self.row[i], self.end[i], self.pos[i] = r, r + self.len, 0.0

    def obs(self) -> np.ndarray:
        return observe(self.m, self.row, self.pos)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply action indices; returns (rewards, done) and moves every episode one bar on (done ones reset)."""
        new = SIZES[actions]
        rew = step_reward(self.m, self.row, self.pos, new)
        self.pos = new.copy()
        self.row += 1
        done = self.row >= self.end
        for i in np.flatnonzero(done):
            self._reset(int(i))
        return rew, done
