"""Fixtures of the account tests."""

from __future__ import annotations

import numpy as np
import pytest

from connectors.history import load_history
from tests.support import DATA

SYMS = ("BTC-USD", "ETH-USD")
NS = 1_000_000_000


@pytest.fixture(scope="module")
def closes() -> dict[str, np.ndarray]:
    """Both symbols' 30-minute closes aligned on time (a missing bar keeps the previous close)."""
    h = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=4, max_bars=6000)
    t = h.ticks.assign(bar=h.ticks.ts // (1800 * NS))
    c = t.groupby(["bar", "symbol"]).price.last().unstack().ffill().dropna()
    return {s: c[s].to_numpy()[:5200] for s in SYMS}
