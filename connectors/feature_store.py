"""The offline feature store: the ClickHouse ``features`` table (schemas/sql/clickhouse/0001_tables.sql).

One row per (symbol, feature set, version, window end ``ts``) with ``names`` and ``values`` arrays. The table has
no resolution column, so the store key names the resolution in ``feature_set``: ``"<name>/<resolution>s"``
(e.g. ``core/1800s``, see :func:`store_name`), which keeps 60 s and 30 min vectors of one symbol apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from operators.features import FeatureSet

__all__ = ["store_name", "write_features", "read_features"]


def store_name(spec: FeatureSet) -> str:
    """``feature_set`` value in the table for ``spec``: ``"<name>/<resolution_s>s"``."""
    return f"{spec.name}/{spec.resolution_s}s"


def write_features(
    client: Client, frame: pd.DataFrame, spec: FeatureSet, *, database: str = "levibot", batch_rows: int = 50_000
) -> int:
    """Insert a features frame (``symbol, ts`` = window end ns, one column per ``spec.features``); NaN rows skipped.

    Column-oriented inserts of ``batch_rows`` rows with a deterministic deduplication token per batch (a retried
    build does not duplicate rows; ReplacingMergeTree collapses re-built rows on merge). Returns rows written.
    """
    cols = list(spec.features)
    vals = frame[cols].to_numpy(np.float64)
    ok = np.isfinite(vals).all(axis=1)
    sym = frame["symbol"].to_numpy(object)[ok]
    ts = frame["ts"].to_numpy(np.int64)[ok]
    vals = vals[ok]
    name = store_name(spec)
    n = 0
    for s in range(0, ts.size, batch_rows):
        e = min(s + batch_rows, ts.size)
        data = [
            sym[s:e].tolist(),
            ts[s:e].tolist(),
            [name] * (e - s),
            [spec.version] * (e - s),
            [cols] * (e - s),
            vals[s:e].tolist(),
        ]
        token = f"features|{name}|{spec.version}|{sym[s]}|{int(ts[s])}|{sym[e - 1]}|{int(ts[e - 1])}|{e - s}"
        client.insert(
            "features",
            data,
            column_names=["symbol", "ts", "feature_set", "feature_set_version", "names", "values"],
            database=database,
            column_oriented=True,
            settings={"insert_deduplication_token": token},
        )
        n += e - s
    return n


def read_features(
    client: Client,
    spec: FeatureSet,
    *,
    database: str = "levibot",
    symbols: Sequence[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> pd.DataFrame:
    """Features of ``spec`` as a frame ``symbol, ts`` (ns) + one column per feature, ordered by (symbol, ts).

    Reads with FINAL (deduplicated). Rows whose stored ``names`` differ from the spec's raise ``ValueError``.
    """
    where = ["feature_set = {fs:String}", "feature_set_version = {v:UInt32}"]
    params: dict = {"fs": store_name(spec), "v": spec.version}
    if symbols:
        where.append("symbol IN {syms:Array(String)}")
        params["syms"] = list(symbols)
    if start_ns is not None:
        where.append("toUnixTimestamp64Nano(ts) >= {s:Int64}")
        params["s"] = int(start_ns)
    if end_ns is not None:
        where.append("toUnixTimestamp64Nano(ts) < {e:Int64}")
        params["e"] = int(end_ns)
    q = (
        f"SELECT symbol, toUnixTimestamp64Nano(ts), names, values FROM {database}.features FINAL "
        f"WHERE {' AND '.join(where)} ORDER BY symbol, ts"
    )
    res = client.query(q, parameters=params)
    cols = list(spec.features)
    rows = res.result_rows
    if not rows:
        return pd.DataFrame(columns=["symbol", "ts", *cols])
    bad = next((r for r in rows if list(r[2]) != cols), None)
    if bad is not None:
        raise ValueError(f"stored feature names {list(bad[2])} differ from the spec's {cols}")
    out = pd.DataFrame(np.asarray([r[3] for r in rows], np.float64), columns=cols)
    out.insert(0, "ts", np.asarray([r[1] for r in rows], np.int64))
    out.insert(0, "symbol", [r[0] for r in rows])
    return out
