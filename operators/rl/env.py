"""One episode of the sizing market (:mod:`.market`) as a gymnasium environment (optional extra ``rl``).

Observation: ``Box(-5, 5, obs_dim)`` float32 (standardized features, the rule's target, the held position); action:
``Discrete(len(SIZES))``, the index of the target size; reward: :func:`~.market.step_reward` (fraction of equity,
after costs). ``reset(seed=...)`` starts at a random row of a random segment (``options={"row": r}``: at row
``r``) with no position; the episode ends (``terminated``) after ``episode_len`` bars or at the segment's last
row with a next return.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from .market import OBS_CLIP, SIZES, MarketData, observe, step_reward

__all__ = ["SizingEnv"]


class SizingEnv(gym.Env[np.ndarray, np.int64]):
    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium's class-level metadata, read-only

    def __init__(self, market: MarketData, episode_len: int = 1024) -> None:
        self.market = market
        self.episode_len = int(episode_len)
        # features clipped to ±OBS_CLIP, the rule's target and the position in [-1, 1]
        self.observation_space = gym.spaces.Box(-OBS_CLIP, OBS_CLIP, (market.obs_dim,), np.float32)
        self.action_space = gym.spaces.Discrete(SIZES.size)
        self.row = 0
        self.end = 0
        self.pos = 0.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        m = self.market
        if options and "row" in options:
            r = int(options["row"])
        else:
            seg = int(self.np_random.integers(m.starts.size))
            lo = int(m.starts[seg])
            hi = m.segment_end(lo)
            r = int(self.np_random.integers(lo, max(hi - 1, lo + 1)))
        self.row = r
        self.end = min(r + self.episode_len, m.segment_end(r))
        self.pos = 0.0
        return self._obs(), {"row": self.row}

    def _obs(self) -> np.ndarray:
        row: np.ndarray = observe(self.market, np.array([self.row]), np.array([self.pos]))[0]
        return row

    def step(self, action: int | np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not self.action_space.contains(a):
            raise ValueError(f"action {action!r} outside {self.action_space}")
        new = float(SIZES[a])
        reward = float(step_reward(self.market, self.row, self.pos, new))
        self.pos = new
        self.row += 1
        terminated = self.row >= self.end
        return self._obs(), reward, terminated, False, {"row": self.row, "position": new}
