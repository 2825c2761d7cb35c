"""Tick history read back from ClickHouse (the source of `levibot replay --from-clickhouse`)."""

from __future__ import annotations

import pandas as pd
from clickhouse_connect.driver.client import Client

from connectors.history import TICK_TABLE_COLUMNS, History


def load_ticks(
    client: Client,
    *,
    database: str = "levibot",
    symbols: list[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> History:
    """Ticks from ``<database>.ticks`` (deduplicated with FINAL) in event-time order, ties by symbol and
    trade id, optionally limited to ``symbols`` and to ``[start_ns, end_ns)`` (ns UTC)."""
    where = []
    params: dict[str, object] = {}
    if symbols:
        where.append("symbol IN {symbols:Array(String)}")
        params["symbols"] = symbols
    if start_ns is not None:
        where.append("ts >= fromUnixTimestamp64Nano({start:Int64}, 'UTC')")
        params["start"] = start_ns
    if end_ns is not None:
        where.append("ts < fromUnixTimestamp64Nano({end:Int64}, 'UTC')")
        params["end"] = end_ns
    # the alias must not be `ts`: ClickHouse would resolve the WHERE clause's `ts` to it
    sql = (
        f"SELECT symbol, toUnixTimestamp64Nano(ts) AS ts_ns, price, qty, side, trade_id, venue, synthetic "
        f"FROM {database}.ticks FINAL {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY ts_ns, symbol, trade_id"
    )
    df = client.query_df(sql, parameters=params).rename(columns={"ts_ns": "ts"})
    if df.empty:
        df = pd.DataFrame({c: [] for c in TICK_TABLE_COLUMNS})
    df["ts"] = df["ts"].astype("int64")
    df["synthetic"] = df["synthetic"].astype(bool)
    return History(df[TICK_TABLE_COLUMNS].reset_index(drop=True))
