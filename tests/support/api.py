"""Shared pieces of the operator API tests (tests/integration/api/ and the bot commands of the signal ingest): a fast
key hasher, keys, the trading rows the read endpoints are checked on, a small trained model, waiting for a key-change
notification, and a `levibot api` replica as a real process."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psycopg

from connectors.postgres.api import ApiDatabase
from flows.api.context import ApiContext
from operators.api.keys import KeyHasher, make_token, parse_token
from tests.support import REPO, wait_for
from tests.support.flowproc import free_port

#: Argon2id at its cheapest settings: a key is hashed and verified in milliseconds (the production cost is in
#: operators/api/keys.py; what is tested here is the logic around it)
FAST = KeyHasher(time_cost=1, memory_cost=8192, parallelism=1)
T0 = 1_800_000_000_000_000_000  # event time of the first stored bar (ns)
S = 1_000_000_000
CAPITAL = 10_000.0  # the account's capital in the read tests (ApiSettings.capital)


#: the quota window of the tests that count requests up to a key's limit ("N/hour")
QUOTA_WINDOW_S = 3600


def clear_of_window_edge(period_s: int = QUOTA_WINDOW_S, margin_s: float = 180.0) -> None:
    """Wait, if need be, until at least ``margin_s`` of the rate limiter's current ``period_s`` window remain.

    The limiter's windows start at multiples of the period since the epoch, and its sliding-window counter weighs
    the previous window's hits by the part of the window still to come: a test that spends a quota and then
    expects a 429 would see a 200 if it straddled a boundary. Quotas per hour and this wait make that impossible
    for a test shorter than ``margin_s``."""
    left = period_s - time.time() % period_s
    if left < margin_s:
        time.sleep(left + 0.5)


def key_headers(db: ApiDatabase, scopes=("read",), tier="enterprise") -> dict[str, str]:
    """A new key in ``db`` with ``scopes`` and ``tier``, as the request headers that present it."""
    tok = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
    kid, sec = parse_token(tok)
    db.create_key(
        key_id=kid,
        name="t",
        secret_hash=FAST.hash(sec),
        scopes=list(scopes),
        tier=tier,
        accounts=["default"],
        rate="",
        created_by="pytest",
        expires_at=None,
    )
    return {"X-API-Key": tok}


def _prices(n: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(7)
    btc = 30_000 * np.cumprod(1 + rng.normal(0, 0.01, n))
    eth = 2_000 * np.cumprod(1 + 0.6 * rng.normal(0, 0.01, n) + 0.5 * rng.normal(0, 0.01, n))
    return {"BTC-USD": btc.round(2).tolist(), "ETH-USD": eth.round(2).tolist()}


FILLS = [  # (second, symbol, side, qty, price, fee, strategy)
    (3, "BTC-USD", "buy", 0.2, 30_100.0, 3.0, "trend"),
    (10, "ETH-USD", "buy", 2.0, 2_010.0, 2.0, "breakout"),
    (20, "BTC-USD", "buy", 0.1, 30_500.0, 1.5, "breakout"),
    (31, "BTC-USD", "sell", 0.05, 30_800.0, 0.8, "trend"),
]


def store_trading_rows(dsn: str, n_bars: int = 60) -> dict[str, list[float]]:
    """Bars of two symbols (a bar a second from :data:`T0`), the orders and fills of :data:`FILLS` and two risk
    decisions (the second one with the kill switch halted) in the database at ``dsn``; returns the closes."""
    px = _prices(n_bars)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for sym, closes in px.items():
            for i, c in enumerate(closes):
                ts = T0 + i * S  # a bar a second of event time (resolution_s is only a label here)
                conn.execute(
                    "INSERT INTO bars (symbol, resolution_s, ts, ts_ns, open, high, low, close, volume, vwap) "
                    "VALUES (%s, 60, to_timestamp(%s / 1e9), %s, %s, %s, %s, %s, 1, %s)",
                    (sym, ts, ts, c, c * 1.001, c * 0.999, c, c),
                )
        for i, (sec, sym, side, qty, price, fee, strat) in enumerate(FILLS):
            ts = T0 + sec * S
            conn.execute(
                "INSERT INTO orders (order_id, strategy, symbol, side, qty, order_type, tif, ts, ts_ns) "
                "VALUES (%s, %s, %s, %s, %s, 'market', 'IOC', to_timestamp(%s / 1e9), %s)",
                (f"o{i}", strat, sym, side, qty, ts, ts),
            )
            conn.execute(
                "INSERT INTO fills (fill_id, order_id, symbol, side, price, qty, fee, liquidity, ts, ts_ns) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, 'taker', to_timestamp(%s / 1e9), %s)",
                (f"f{i}", f"o{i}", sym, side, price, qty, fee, ts, ts),
            )
        for i, (reasons, dd) in enumerate([([], 0.05), (["kill_switch_halted"], 0.31)]):
            ts = T0 + (40 + i) * S
            conn.execute(
                "INSERT INTO risk_decisions (id, intent_id, symbol, strategy, side, action, requested_qty, "
                "approved_qty, reasons, var, cvar, portfolio, ts, ts_ns) VALUES (%s, %s, 'BTC-USD', 'trend', "
                "'buy', 'rejected', 1, 0, %s, 0.01, 0.02, %s, to_timestamp(%s / 1e9), %s)",
                (f"d{i}", f"i{i}", reasons, json.dumps({"equity": CAPITAL, "drawdown": dd}), ts, ts),
            )
    return px


def train_model():
    """A small LightGBM model on synthetic features (seconds to train)."""
    from operators.models.lgbm import LgbmParams, TrainConfig, train_lightgbm

    rng = np.random.default_rng(3)
    n = 1200
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(float)
    ts = T0 + np.arange(n, dtype=np.int64) * 60 * S
    return train_lightgbm(
        X, y, ts, ("a", "b", "c"), TrainConfig(params=LgbmParams(num_boost_round=15), n_splits=2, gap_ns=120 * S)
    )


def wait_revocation_heard(ctx: ApiContext, kid: str, timeout_s: float = 2.0) -> None:
    """Wait until the process has dropped ``kid``'s cached row (PostgreSQL delivers the notification of a change
    asynchronously, milliseconds after the commit; see docs/api.md). Fails if it never comes."""
    wait_for(lambda: ctx.keys.get(kid) is None, timeout_s, f"the key-change notification for {kid}", interval_s=0.002)


class Replica:
    """A `levibot api` process on a free port of 127.0.0.1, started with ``env`` (its output in ``log``); ready once
    its /healthz answers."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "levibot"), "api", "--port", str(self.port), "--log-level", "warning"],
            cwd=REPO,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            wait_for(
                lambda: httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200,
                60,
                f"the replica on {self.port} to answer /healthz",
                procs=[self.proc],
                retry_on=(httpx.HTTPError,),
                interval_s=0.3,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-2000:]}") from None

    def get(self, path: str, tok: str) -> httpx.Response:
        return httpx.get(self.url + path, headers={"X-API-Key": tok}, timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
