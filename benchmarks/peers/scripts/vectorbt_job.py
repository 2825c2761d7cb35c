"""Peer side of the vectorised sweep, run inside the vectorbt venv (no project imports).

For each symbol: the ``ema_spread`` feature (EMA12 and EMA26 of the closes, each seeded by the ``math.fsum`` mean
of its first closes, ``(EMA12 - EMA26) / close`` from bar 25 on, NaN before), then ``Portfolio.from_order_func``
over all parameter sets at once (one column per set) with a Numba order function that, at each bar, applies the
rule to the previous bar's spread (long above ``entry``, short below ``-entry``, flat inside ``+-exit``, else
hold) and, when the wanted position changes, orders target minus held: target = position x fraction x equity at
that close / close, capped at max_position_frac x equity / close, none below min_notional; filled at this bar's
open with the slippage and fee of the project's ``SimConfig``.

Usage: ``vectorbt_job.py IN.npz OUT.npz N_SYMBOLS``. Writes each symbol's value matrix (sets x bars) and fill
counts to OUT.npz; prints one JSON line with the seconds (from the spread to the value matrices and fill counts,
after an untimed warm-up on a few bars that compiles the Numba functions) and the vectorbt version.
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
import vectorbt as vbt
from numba import njit
from vectorbt.portfolio import nb
from vectorbt.portfolio.enums import Direction, NoOrder, SizeType


@njit(cache=False)
def ema_tail_nb(close, n, seed):
    out = np.full(close.size, np.nan)
    if close.size < n:
        return out
    a = 2.0 / (n + 1)
    b = 1.0 - a
    v = seed
    out[n - 1] = v
    for i in range(n, close.size):
        v = a * close[i] + b * v
        out[i] = v
    return out


def ema_spread(close: np.ndarray, fast: int = 12, slow: int = 26, warm: int = 25) -> np.ndarray:
    c = close.tolist()
    ef = ema_tail_nb(close, fast, math.fsum(c[:fast]) / fast)
    es = ema_tail_nb(close, slow, math.fsum(c[:slow]) / slow)
    out = np.full(close.size, np.nan)
    out[warm:] = (ef[warm:] - es[warm:]) / close[warm:]
    return out


@njit(cache=False)
def order_func_nb(c, spread, close, open_, entry, exit_, target, fraction, max_frac, min_notional, fee, slip):
    i = c.i
    if i == 0:
        return NoOrder
    col = c.col
    s = spread[i - 1]
    want = target[col]
    if s > entry[col]:
        want = 1.0
    elif s < -entry[col]:
        want = -1.0
    elif abs(s) < exit_[col]:
        want = 0.0
    if want == target[col]:
        return NoOrder
    target[col] = want
    px = close[i - 1]
    q = c.position_now
    eq = max(c.cash_now + q * px, 0.0)
    goal = want * fraction * eq / px
    cap = max_frac * eq / px
    if abs(goal) > cap:
        goal = math.copysign(cap, goal)
    delta = goal - q
    if abs(delta) * px < min_notional:
        return NoOrder
    return nb.order_nb(
        size=delta,
        price=open_[i],
        size_type=SizeType.Amount,
        direction=Direction.Both,
        fees=fee,
        slippage=slip,
    )


def sweep(close, open_, entry, exit_, cfg):
    capital, fraction, max_frac, min_notional, fee_bps, slip_bps = cfg
    spread = ema_spread(close)
    P = entry.size
    target = np.zeros(P)
    pf = vbt.Portfolio.from_order_func(
        np.broadcast_to(close[:, None], (close.size, P)),
        order_func_nb,
        spread,
        close,
        open_,
        entry,
        exit_,
        target,
        fraction,
        max_frac,
        min_notional,
        fee_bps / 1e4,
        slip_bps / 1e4,
        init_cash=capital,
    )
    value = np.asarray(pf.value()).T.copy()
    fills = np.asarray(pf.orders.count()).astype(np.int64)
    return value, fills


def main() -> None:
    inp, outp, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    z = np.load(inp)
    entry, exit_, cfg = z["entry"], z["exit"], tuple(float(x) for x in z["cfg"])
    data = [(z[f"close{i}"], z[f"open{i}"]) for i in range(n)]
    c0, o0 = data[0]
    sweep(c0[:60].copy(), o0[:60].copy(), entry[:2].copy(), exit_[:2].copy(), cfg)  # compile, untimed
    t0 = time.perf_counter()
    got = [sweep(c, o, entry, exit_, cfg) for c, o in data]
    secs = time.perf_counter() - t0
    arrays = {}
    for i, (value, fills) in enumerate(got):
        arrays[f"equity{i}"] = value
        arrays[f"fills{i}"] = fills
    np.savez(outp, **arrays)
    print(json.dumps({"seconds": secs, "version": vbt.__version__}))


if __name__ == "__main__":
    main()
