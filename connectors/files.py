"""File sources for bars and ticks (CSV, gzipped CSV, Parquet), returned in event-time order.

Rows that cannot be used are never dropped silently: they come back as a ``rejects`` frame with
the row number and a reason, which callers route to the dead-letter topic or report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from schemas.events import SYMBOL_PATTERN

BAR_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]
TICK_COLUMNS = ["symbol", "ts", "price", "qty", "side", "trade_id", "venue"]
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
# The bundled files name columns "<ASSET>.open" etc.; such assets are quoted in USD.
_PREFIXED = re.compile(r"^(?P<asset>[A-Za-z0-9]+)\.(?P<field>open|high|low|close|volume)$")


@dataclass(frozen=True)
class Loaded:
    """A validated, event-time-ordered frame plus the rows that were rejected (with ``row`` and ``reason``)."""

    frame: pd.DataFrame
    rejects: pd.DataFrame


def _read_any(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    name = path.name.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return pd.read_parquet(path)
    if name.endswith(".csv") or name.endswith(".csv.gz"):
        return pd.read_csv(path)
    raise ValueError(f"unsupported file type {path.name!r}: use .csv, .csv.gz or .parquet")


def _to_ns(col: pd.Series) -> pd.Series:
    """Event time as int64 ns UTC from epoch numbers (s, ms, us or ns, by magnitude) or date strings (UTC if naive)."""
    if pd.api.types.is_numeric_dtype(col):
        v = pd.to_numeric(col, errors="coerce")
        scale = np.select([v.abs() < 1e11, v.abs() < 1e14, v.abs() < 1e17], [10**9, 10**6, 10**3], 1).astype(np.int64)
        if pd.api.types.is_integer_dtype(v):  # exact integer arithmetic: no float rounding of ns
            return pd.Series(v.to_numpy(np.int64) * scale, index=col.index, dtype="Int64")
        return (v * scale).round().astype("Int64")
    parsed = pd.to_datetime(col, utc=True, errors="coerce", format="mixed").dt.as_unit("ns")
    out = pd.Series(pd.NA, index=col.index, dtype="Int64")
    ok = parsed.notna()
    out[ok] = parsed[ok].astype("int64")
    return out


def _split(df: pd.DataFrame, bad: pd.Series, reasons: pd.Series) -> Loaded:
    rejects = pd.DataFrame({"row": df.index[bad] + 2, "reason": reasons[bad]})  # +2: header line, 1-based
    good = df[~bad].copy()
    good = good.sort_values("ts", kind="stable").reset_index(drop=True)
    return Loaded(good, rejects.reset_index(drop=True))


def normalise_bars(raw: pd.DataFrame, symbol: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """Map known column layouts to ``symbol, ts, open, high, low, close, volume``.

    Accepts the bundled layout (``Date, BTC.open, BTC.close, ...`` — note close comes second there,
    so columns are matched by name, never by position) and a plain one (``ts|time|date, open, ...``).
    """
    detected = None
    rename: dict[str, str] = {}
    for c in raw.columns:
        m = _PREFIXED.match(str(c))
        if m:
            rename[c] = m.group("field")
            detected = f"{m.group('asset').upper()}-USD"
        elif str(c).lower() in ("date", "time", "timestamp", "ts", "open_time"):
            rename[c] = "ts"
        elif str(c).lower() in ("open", "high", "low", "close", "volume", "symbol"):
            rename[c] = str(c).lower()
    df = raw.rename(columns=rename)
    missing = [c for c in BAR_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"bar file lacks columns {missing}; found {list(raw.columns)}")
    sym = symbol or detected
    if "symbol" not in df.columns:
        if sym is None:
            raise ValueError("bar file has no symbol column: pass --symbol")
        df["symbol"] = sym
    return df[["symbol", *BAR_COLUMNS]], sym


def read_bars(path: str | Path, symbol: str | None = None) -> Loaded:
    """Read OHLCV bars, validate each row (finite positive prices, OHLC consistent, volume >= 0)."""
    df, _ = normalise_bars(_read_any(Path(path)), symbol)
    df = df.copy()
    df["ts"] = _to_ns(df["ts"])
    for c in ("open", "high", "low", "close", "volume"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    reasons = pd.Series("", index=df.index, dtype=object)

    def flag(mask: pd.Series, why: str) -> None:
        mask = mask.fillna(True) & (reasons == "")
        reasons[mask] = why

    flag(df["ts"].isna(), "unparseable timestamp")
    px = df[["open", "high", "low", "close"]].to_numpy()
    flag(
        pd.Series(~np.isfinite(px).all(axis=1) | (px <= 0).any(axis=1), index=df.index), "price not finite and positive"
    )
    flag(~np.isfinite(df["volume"]) | (df["volume"] < 0), "volume not finite and non-negative")
    ohlc_bad = (df["low"] > df[["open", "close"]].min(axis=1)) | (df["high"] < df[["open", "close"]].max(axis=1))
    flag(ohlc_bad, "OHLC inconsistent (low above open/close or high below)")
    flag(~df["symbol"].astype(str).str.fullmatch(SYMBOL_PATTERN), "bad symbol")
    bad = reasons != ""
    out = _split(df, bad, reasons)
    out.frame["ts"] = out.frame["ts"].astype("int64")
    return out


def read_ticks(path: str | Path) -> Loaded:
    """Read trades (``symbol, ts, price, qty[, side, trade_id, venue]``) and validate each row."""
    df = _read_any(Path(path)).copy()
    missing = [c for c in ("symbol", "ts", "price", "qty") if c not in df.columns]
    if missing:
        raise ValueError(f"tick file lacks columns {missing}; found {list(df.columns)}")
    df["ts"] = _to_ns(df["ts"])
    df["price"] = pd.to_numeric(df["price"], errors="coerce").astype("float64")
    df["qty"] = pd.to_numeric(df["qty"], errors="coerce").astype("float64")
    if "side" not in df.columns:
        df["side"] = "unknown"
    df["side"] = df["side"].fillna("unknown").astype(str).str.lower()
    if "venue" not in df.columns:
        df["venue"] = "file"
    if "trade_id" not in df.columns:
        df["trade_id"] = [f"{s}-{t}-{i}" for i, (s, t) in enumerate(zip(df["symbol"], df["ts"], strict=True))]
    df["trade_id"] = df["trade_id"].astype(str)
    reasons = pd.Series("", index=df.index, dtype=object)

    def flag(mask: pd.Series, why: str) -> None:
        mask = mask.fillna(True) & (reasons == "")
        reasons[mask] = why

    flag(df["ts"].isna(), "unparseable timestamp")
    flag(~np.isfinite(df["price"]) | (df["price"] <= 0), "price not finite and positive")
    flag(~np.isfinite(df["qty"]) | (df["qty"] < 0), "qty not finite and non-negative")
    flag(~df["side"].isin(["buy", "sell", "unknown"]), "side not buy/sell/unknown")
    flag(~df["symbol"].astype(str).str.fullmatch(SYMBOL_PATTERN), "bad symbol")
    out = _split(df, reasons != "", reasons)
    out.frame["ts"] = out.frame["ts"].astype("int64")
    return Loaded(out.frame[TICK_COLUMNS], out.rejects)
