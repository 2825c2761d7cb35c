"""Run reports: one self-contained HTML file (summary table, equity and drawdown pictures as inline SVG drawn
here, optional extra tables) and a JSON summary.

The HTML has no external CSS, JavaScript, fonts or images and makes no network request; it is also
well-formed XML (void elements self-closed), so ``xml.etree`` can parse it. All text is escaped with
``html.escape``. Pictures: a polyline of at most ``max_points`` (default 2,000) points, downsampled by keeping
the minimum and maximum of each bucket (:func:`downsample_minmax`) so that spikes survive; x axis in UTC with
ticks at round times, y axis with 1-2-5 ticks.

Summary values are formatted by the unit suffix of their key (see ``operators.performance``):
``_frac`` as a percentage, ``_quote`` with thousands separators and 2 decimals, ``_ns`` as an ISO-8601 UTC
time, ``_s`` as seconds (with a days/hours/minutes reading when long), ``_per_year`` as ``×/yr``; ints with
thousands separators, other floats with 4 significant digits; NaN as ``n/a``.
"""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from operators.performance import drawdown_series

__all__ = ["write_html_report", "write_json_summary", "format_value", "downsample_minmax", "svg_line_chart",
           "json_clean"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600,
                 12 * 3600, 86_400, 2 * 86_400, 7 * 86_400, 14 * 86_400, 28 * 86_400, 56 * 86_400,
                 91 * 86_400, 182 * 86_400, 364 * 86_400, 728 * 86_400)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;
color:#1b1f24;background:#fff}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .4em}
table{border-collapse:collapse;font-size:.9em;margin:.3em 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f6f8fa}
svg{display:block;margin:.3em 0;background:#fff}
.axis{stroke:#57606a;stroke-width:1}.grid{stroke:#eaeef2;stroke-width:1}
.lbl{font-size:11px;fill:#57606a}.ttl{font-size:13px;fill:#1b1f24;font-weight:600}
"""


# ------------------------------------------------------------------------------------------- formatting


def _ns_to_datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(ns) // 1000)


def _iso_utc(ns: int) -> str:
    return _ns_to_datetime(ns).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    if seconds >= 86_400:
        return f"{seconds:,.0f} s ({seconds / 86_400:.1f} d)"
    if seconds >= 3600:
        return f"{seconds:,.0f} s ({seconds / 3600:.1f} h)"
    return f"{seconds:,.6g} s"


def _general(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.4g}"


def format_value(key: str, value: Any) -> str:
    """Human-readable text for ``value`` by the unit suffix of ``key`` (not yet HTML-escaped).

    >>> format_value("max_drawdown_frac", 0.2345), format_value("end_equity_quote", 12345.678)
    ('23.45 %', '12,345.68')
    >>> format_value("start_ts_ns", 1_700_000_000 * 10**9), format_value("sharpe", float("nan"))
    ('2023-11-14 22:13:20 UTC', 'n/a')
    >>> format_value("turnover_per_year", 12.3456), format_value("n_trades", 1234), format_value("x", 1/3)
    ('12.35 ×/yr', '1,234', '0.3333')
    >>> format_value("periods_per_year", 17520.0), format_value("mean_return_frac", 0.000123)
    ('17,520 ×/yr', '0.0123 %')
    """
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        if key.endswith("_ns"):
            return _iso_utc(int(value))
        if key.endswith("_s"):
            return _duration(float(value))
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if key.endswith("_frac"):
            pct = v * 100
            return f"{pct:.3g} %" if 0 < abs(pct) < 0.1 else f"{pct:,.2f} %"
        if key.endswith("_quote"):
            return f"{v:,.2f}"
        if key.endswith("_ns"):
            return _iso_utc(int(v))
        if key.endswith("_s"):
            return _duration(v)
        if key.endswith("_per_year"):
            return f"{_general(v)} ×/yr"
        return _general(v)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


# ------------------------------------------------------------------------------------------ downsampling


def downsample_minmax(x: Any, y: Any, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of ``(x, y)`` in their original order: the first and last points plus,
    for each of ``(max_points - 2) // 2`` equal index buckets, the points holding the bucket's min and max of
    ``y``, so the global min and max (spikes) always survive. Series no longer than ``max_points`` are returned
    unchanged.

    >>> xs, ys = downsample_minmax(np.arange(10), np.array([0., 5, 1, 1, 9, 2, 1, -3, 1, 0]), max_points=6)
    >>> xs.tolist(), ys.tolist()
    ([0, 4, 5, 7, 9], [0.0, 9.0, 2.0, -3.0, 0.0])
    """
    xa = np.asarray(x)
    ya = np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or ya.ndim != 1:
        raise ValueError(f"x {xa.shape} and y {ya.shape} must be 1-d of the same length")
    n = ya.size
    if max_points < 4:
        raise ValueError(f"max_points must be >= 4, got {max_points}")
    if n <= max_points:
        return xa, ya
    nb = (max_points - 2) // 2
    k = -(-n // nb)  # bucket size (ceil)
    idx = np.minimum(np.arange(nb * k), n - 1).reshape(nb, k)  # last bucket padded with the last point
    vals = ya[idx]
    starts = np.arange(nb) * k
    keep = np.concatenate(([0, n - 1], np.minimum(starts + vals.argmin(axis=1), n - 1),
                           np.minimum(starts + vals.argmax(axis=1), n - 1)))
    keep = np.unique(keep)  # sorted, original order
    return xa[keep], ya[keep]


# --------------------------------------------------------------------------------------------------- SVG


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / max(target, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if raw <= m * mag:
            return m * mag
    return 10.0 * mag


def _value_ticks(lo: float, hi: float) -> tuple[list[float], int]:
    step = _nice_step(hi - lo)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    decimals = max(0, -math.floor(math.log10(step) + 1e-12))
    return ticks, decimals


def _time_ticks(t0: int, t1: int) -> tuple[list[int], str]:
    span_s = (t1 - t0) / 1e9
    step_s = next((s for s in _TIME_STEPS_S if span_s / s <= 6), _TIME_STEPS_S[-1])
    while span_s / step_s > 6:
        step_s *= 2
    step = step_s * 1_000_000_000
    first = -(-t0 // step) * step
    fmt = "%Y-%m-%d" if step_s >= 86_400 else ("%m-%d %H:%M" if step_s >= 60 else "%H:%M:%S")
    return list(range(first, t1 + 1, step)), fmt


def svg_line_chart(ts: Any, values: Any, *, title: str, y_label: str = "", percent: bool = False,
                   fill: bool = False, width: int = 960, height: int = 300, max_points: int = 2000,
                   color: str = "#0969da") -> str:
    """An inline ``<svg>`` line chart of ``values`` against ``ts`` (int ns, UTC), downsampled to at most
    ``max_points`` points. ``percent``: values are fractions shown as % on the y axis. ``fill``: shade the area
    between the line and zero. Values must be finite.
    """
    t = np.asarray(ts, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape or v.ndim != 1:
        raise ValueError(f"ts {t.shape} and values {v.shape} must be 1-d of the same length")
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite")
    ml, mr, mt, mb = 78, 18, 28, 40
    pw, ph = width - ml - mr, height - mt - mb
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img">',
           f"<title>{html.escape(title)}</title>",
           f'<text class="ttl" x="{ml}" y="18">{html.escape(title)}</text>']
    if v.size == 0:
        out.append(f'<text class="lbl" x="{ml + pw / 2}" y="{mt + ph / 2}" text-anchor="middle">no data</text>')
        out.append("</svg>")
        return "\n".join(out)
    t, v = downsample_minmax(t, v, max_points)
    scale = 100.0 if percent else 1.0
    y = v * scale
    lo, hi = float(y.min()), float(y.max())
    if fill:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1.0):
        pad = max(abs(hi) * 0.01, 1e-9 if percent else 1e-6, 1.0 if hi == 0 else 0.0)
        lo, hi = lo - pad, hi + pad
    else:
        pad = (hi - lo) * 0.05
        lo, hi = (lo - pad if not (fill and lo == 0.0) else lo), (hi + pad if not (fill and hi == 0.0) else hi)
    t0, t1 = int(t[0]), int(t[-1])

    def px(tt: float) -> float:
        return ml + (pw / 2 if t1 == t0 else (tt - t0) / (t1 - t0) * pw)

    def py(yy: float) -> float:
        return mt + (hi - yy) / (hi - lo) * ph

    # grid and value ticks
    vt, dec = _value_ticks(lo, hi)
    for tick in vt:
        yy = py(tick)
        label = f"{tick:,.{dec}f}" + (" %" if percent else "")
        out.append(f'<line class="grid" x1="{ml}" y1="{yy:.2f}" x2="{ml + pw}" y2="{yy:.2f}"/>')
        out.append(f'<text class="lbl" x="{ml - 6}" y="{yy + 4:.2f}" text-anchor="end">{html.escape(label)}</text>')
    # time ticks (UTC)
    if t1 > t0:
        tt_list, fmt = _time_ticks(t0, t1)
        for tick in tt_list:
            xx = px(tick)
            label = _ns_to_datetime(tick).strftime(fmt)
            out.append(f'<line class="grid" x1="{xx:.2f}" y1="{mt}" x2="{xx:.2f}" y2="{mt + ph}"/>')
            out.append(f'<line class="axis" x1="{xx:.2f}" y1="{mt + ph}" x2="{xx:.2f}" y2="{mt + ph + 4}"/>')
            out.append(f'<text class="lbl" x="{xx:.2f}" y="{mt + ph + 16}" text-anchor="middle">'
                       f"{html.escape(label)}</text>")
    else:
        out.append(f'<text class="lbl" x="{px(t0):.2f}" y="{mt + ph + 16}" text-anchor="middle">'
                   f"{html.escape(_iso_utc(t0))}</text>")
    out.append(f'<text class="lbl" x="{ml + pw}" y="{height - 4}" text-anchor="end">time (UTC)</text>')
    if y_label:
        out.append(f'<text class="lbl" x="12" y="{mt + ph / 2:.2f}" text-anchor="middle" '
                   f'transform="rotate(-90 12 {mt + ph / 2:.2f})">{html.escape(y_label)}</text>')
    # axes
    out.append(f'<line class="axis" x1="{ml}" y1="{mt}" x2="{ml}" y2="{mt + ph}"/>')
    out.append(f'<line class="axis" x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}"/>')
    # data
    pts = " ".join(f"{px(a):.2f},{py(b):.2f}" for a, b in zip(t.tolist(), y.tolist()))
    if fill:
        z = py(0.0)
        poly = f"{px(t0):.2f},{z:.2f} {pts} {px(t1):.2f},{z:.2f}"
        out.append(f'<polygon points="{poly}" fill="{color}" fill-opacity="0.18" stroke="none"/>')
    if v.size == 1:
        out.append(f'<circle cx="{px(t0):.2f}" cy="{py(float(y[0])):.2f}" r="3" fill="{color}"/>')
    else:
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.3" '
                   'stroke-linejoin="round"/>')
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- writing


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    cols: list[str] = []
    for row in rows:
        for k in row:
            if k not in cols:
                cols.append(k)
    if not cols:
        return "<p>(empty)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for row in rows:
        cells = []
        for c in cols:
            val = row.get(c)
            cls = ' class="num"' if _is_number(val) else ""
            cells.append(f"<td{cls}>{html.escape(format_value(str(c), val) if c in row else '')}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>"


def _atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_html_report(path: str | os.PathLike[str], *, title: str, summary: Mapping[str, Any], equity_ts: Any,
                      equity: Any, drawdown: Any = None,
                      tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                      max_points: int = 2000) -> Path:
    """Write a self-contained HTML report and return its path (parent directories are created; the file is
    replaced atomically).

    ``summary``: key → value, shown as a table formatted by :func:`format_value`. ``equity_ts``: int ns (UTC);
    ``equity``: quote currency. ``drawdown``: positive fractions below the running peak, same length (default:
    computed from ``equity``). ``tables``: optional extra tables, name → rows (dicts; columns are the union of
    the rows' keys in first-seen order).
    """
    p = Path(path)
    ts = np.asarray(equity_ts, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if ts.shape != eq.shape:
        raise ValueError(f"equity_ts {ts.shape} and equity {eq.shape} differ in shape")
    dd = drawdown_series(eq) if drawdown is None and eq.size else np.asarray(
        drawdown if drawdown is not None else [], dtype=np.float64)
    if dd.shape != eq.shape:
        raise ValueError(f"drawdown {dd.shape} and equity {eq.shape} differ in shape")
    t = html.escape(title)
    parts = ['<!DOCTYPE html>', '<html lang="en">', "<head>", '<meta charset="utf-8"/>',
             '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
             f"<title>{t}</title>", f"<style>{_CSS}</style>", "</head>", "<body>", f"<h1>{t}</h1>"]
    if ts.size:
        parts.append(f"<p>{html.escape(_iso_utc(int(ts[0])))} – {html.escape(_iso_utc(int(ts[-1])))}, "
                     f"{ts.size:,} equity marks</p>")
    parts.append("<h2>Summary</h2>")
    rows = []
    for k, v in summary.items():
        cls = ' class="num"' if _is_number(v) else ""
        rows.append(f"<tr><th>{html.escape(str(k))}</th><td{cls}>{html.escape(format_value(str(k), v))}</td></tr>")
    parts.append("<table><tbody>\n" + "\n".join(rows) + "\n</tbody></table>")
    parts.append("<h2>Equity</h2>")
    parts.append(svg_line_chart(ts, eq, title="Equity (quote currency)", y_label="equity", max_points=max_points))
    parts.append("<h2>Drawdown</h2>")
    parts.append(svg_line_chart(ts, -dd, title="Drawdown below running peak", y_label="drawdown (%)",
                                percent=True, fill=True, max_points=max_points, color="#cf222e"))
    for name, trows in (tables or {}).items():
        parts.append(f"<h2>{html.escape(str(name))}</h2>")
        parts.append(_table(trows))
    parts += ["</body>", "</html>", ""]
    return _atomic_write(p, "\n".join(parts))


def json_clean(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python types and NaN/±inf into ``None`` (JSON ``null``).

    >>> json_clean({"a": np.float64("nan"), "b": np.int64(3), "c": [1.5, float("inf")]})
    {'a': None, 'b': 3, 'c': [1.5, None]}
    """
    if isinstance(value, Mapping):
        return {str(k): json_clean(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return json_clean(value.tolist())
    if isinstance(value, (list, tuple)):
        return [json_clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def write_json_summary(path: str | os.PathLike[str], summary: Mapping[str, Any]) -> Path:
    """Write ``summary`` as indented JSON (UTF-8; NaN/±inf as ``null``, see :func:`json_clean`); returns the path."""
    text = json.dumps(json_clean(summary), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    return _atomic_write(Path(path), text)
