"""Shared input checks and the ring buffer behind the rolling estimators (internal)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["check_alpha", "as_returns", "ReturnWindow"]


def check_alpha(alpha: float) -> float:
    """``alpha`` (confidence, fraction) must be in (0, 1); returned as float."""
    a = float(alpha)
    if not 0.0 < a < 1.0:
        raise ValueError(f"alpha must be a confidence level in (0, 1), got {alpha!r}")
    return a


def as_returns(returns: Iterable[float] | np.ndarray) -> np.ndarray:
    """1-D float64 array of finite returns, at least one."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        r = r.reshape(-1)
    if r.size == 0:
        raise ValueError("need at least one return")
    if not np.isfinite(r).all():
        raise ValueError("returns must be finite")
    return r


class ReturnWindow:
    """The last ``window`` returns in a fixed ring buffer: ``update`` O(1), ``values`` O(window), bounded, picklable.

    >>> w = ReturnWindow(3)
    >>> for x in (1.0, 2.0, 3.0, 4.0):
    ...     w.update(x)
    >>> w.values().tolist(), w.n
    ([2.0, 3.0, 4.0], 3)
    """

    __slots__ = ("window", "_buf", "_i", "n", "count")

    def __init__(self, window: int) -> None:
        if int(window) < 1:
            raise ValueError(f"window must be >= 1 return, got {window!r}")
        self.window = int(window)
        self._buf = np.zeros(self.window, dtype=np.float64)
        self._i = 0  # next write slot
        self.n = 0  # returns held (<= window)
        self.count = 0  # returns seen in total

    def update(self, r: float) -> None:
        """Append one return (finite, raises ``ValueError`` otherwise); the oldest drops out when full."""
        x = float(r)
        if not math.isfinite(x):
            raise ValueError(f"return must be finite, got {r!r}")
        self._buf[self._i] = x
        self._i = (self._i + 1) % self.window
        if self.n < self.window:
            self.n += 1
        self.count += 1

    def values(self) -> np.ndarray:
        """The held returns, oldest first (a copy)."""
        if self.n < self.window:
            return self._buf[: self.n].copy()
        i = self._i
        return np.concatenate((self._buf[i:], self._buf[:i]))

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.window, self._buf, self._i, self.n, self.count)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.window, self._buf, self._i, self.n, self.count = s


class RollingEstimator:
    """Base of the rolling-window estimators: a :class:`ReturnWindow` plus ``var``/``cvar`` of its contents.

    Subclasses set ``_var_fn`` and ``_cvar_fn`` (batch functions ``f(returns, alpha) -> float``), so a rolling
    estimator equals the batch estimator on the same window, bit for bit.
    """

    __slots__ = ("_w",)

    @staticmethod
    def _var_fn(returns: Iterable[float] | np.ndarray, alpha: float = 0.95) -> float:
        return math.nan

    @staticmethod
    def _cvar_fn(returns: Iterable[float] | np.ndarray, alpha: float = 0.95) -> float:
        return math.nan

    def __init__(self, window: int) -> None:
        self._w = ReturnWindow(window)

    @property
    def window(self) -> int:
        """Window length, returns."""
        return self._w.window

    @property
    def n(self) -> int:
        """Returns currently held (<= window)."""
        return self._w.n

    @property
    def ready(self) -> bool:
        """True once the window is full."""
        return self._w.n == self._w.window

    def update(self, r: float) -> None:
        """Fold one one-period return (finite)."""
        self._w.update(r)

    def values(self) -> np.ndarray:
        """The window's returns, oldest first."""
        return self._w.values()

    def var(self, alpha: float = 0.95) -> float:
        """VaR at confidence ``alpha`` of the current window, return sign (a loss is negative)."""
        if self._w.n == 0:
            raise ValueError("no returns yet")
        return self._var_fn(self._w.values(), alpha)

    def cvar(self, alpha: float = 0.95) -> float:
        """CVaR (expected shortfall) at confidence ``alpha`` of the current window, return sign."""
        if self._w.n == 0:
            raise ValueError("no returns yet")
        return self._cvar_fn(self._w.values(), alpha)

    def __getstate__(self) -> ReturnWindow:
        return self._w

    def __setstate__(self, w: ReturnWindow) -> None:
        self._w = w
