"""Renderings of a tear sheet (:class:`operators.report.Report`): a self-contained HTML page, a JSON summary and
a short terminal summary.

HTML: one file with plotly.js embedded inline (from the ``plotly`` package, the project's one charting library;
see ``docs/reports.md`` for why), the charts as JSON data drawn by ``Plotly.newPlot`` on load, tables and metric
cards as plain HTML. The page requests nothing from the network: no CDN, no fonts, no images, no MathJax. All text
is escaped with ``html.escape``. Long series arrive thinned by the builder; numbers in the chart data are written
with 6 significant digits and time as epoch milliseconds, which keeps a two-year run near 5 MB, most of it the
library.

JSON: stable keys documented in ``docs/reports.md`` (``format``, ``version``, ``title``, ``kind``, ``period``,
``info``, ``metrics``, ``metric_info``, ``sections``); NaN and ±inf are ``null``.

Values are formatted by their unit (:data:`operators.report.UNITS`), never by a key's suffix: a fraction as a
percentage, quote currency with thousands separators and two decimals, durations in days/hours/minutes, times as
UTC, counts with separators; a missing value as "n/a".
"""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from operators.report import Chart, Report, Table
from operators.report.model import downsample_minmax

__all__ = [
    "FORMAT",
    "VERSION",
    "format_value",
    "report_json",
    "render_html",
    "write_html_report",
    "write_json_summary",
    "write_report",
    "terminal_summary",
    "json_clean",
    "downsample_minmax",
    "compare_summaries",
    "render_comparison",
]

FORMAT = "levibot.report"
VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg2:#f6f8fa;--good:#1a7f37;--bad:#cf222e}
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1180px;
padding:20px 28px;color:var(--fg);background:#fff;line-height:1.45}
h1{font-size:1.6em;margin:0 0 .2em}h2{font-size:1.25em;margin:1.6em 0 .3em;padding-top:.6em;border-top:1px solid var(--line)}
h3{font-size:1em;margin:1.1em 0 .3em}
p.sub{color:var(--muted);margin:.1em 0}p.reading{color:var(--muted);margin:.2em 0 .6em}
nav{margin:.8em 0;font-size:.9em}nav a{margin-right:.9em;color:#0969da;text-decoration:none}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px;margin:.6em 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 10px;background:var(--bg2)}
.card .label{font-size:.8em;color:var(--muted)}.card .value{font-size:1.25em;font-variant-numeric:tabular-nums}
.card .note{font-size:.72em;color:var(--muted)}
.value.pos{color:var(--good)}.value.neg{color:var(--bad)}
table{border-collapse:collapse;font-size:.88em;margin:.3em 0 .8em}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}th{background:var(--bg2);font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.chart{width:100%;height:360px;margin:.4em 0 0}
.chart-reading{font-size:.85em;color:var(--muted);margin:.1em 0 1em}
ul.notes{margin:.3em 0 .8em;padding-left:1.2em}ul.notes li{margin:.15em 0}
footer{margin-top:2em;font-size:.8em;color:var(--muted)}
"""

# ---------------------------------------------------------------------------------------------- formatting


def _iso(ns: int, seconds: bool = False) -> str:
    d = _EPOCH + timedelta(microseconds=int(ns) // 1000)
    return d.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def _duration(s: float) -> str:
    if s >= 86_400:
        d = s / 86_400
        return f"{d:,.1f} days" if d < 10 else f"{d:,.0f} days"
    if s >= 3600:
        return f"{s / 3600:.1f} hours"
    if s >= 60:
        return f"{s / 60:.0f} minutes"
    return f"{s:.3g} seconds"


def _general(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.4g}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(float(value)))


def format_value(unit: str, value: Any) -> str:
    """Text for ``value`` in ``unit`` (see :data:`operators.report.UNITS`; not yet HTML-escaped).

    >>> format_value("fraction", 0.2345), format_value("quote", 12345.678), format_value("count", 1234)
    ('23.45 %', '12,345.68', '1,234')
    >>> format_value("timestamp", 1_700_000_000 * 10**9), format_value("ratio", float("nan"))
    ('2023-11-14 22:13 UTC', 'n/a')
    >>> format_value("seconds", 90_000.0), format_value("per_year", 12.3456), format_value("fraction", 0.000123)
    ('1.0 days', '12.35 times a year', '0.0123 %')
    """
    if _missing(value):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if unit == "text" or isinstance(value, str):
        return str(value)
    v = float(value)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if unit == "fraction":
        pct = v * 100
        return f"{pct:.3g} %" if 0 < abs(pct) < 0.1 else f"{pct:,.2f} %"
    if unit == "quote":
        return f"{v:,.2f}"
    if unit == "count":
        return f"{round(v):,}"
    if unit == "seconds":
        return _duration(v)
    if unit == "timestamp":
        return _iso(int(v))
    if unit == "per_year":
        return f"{_general(v)} times a year"
    if unit in ("probability", "nats"):
        return f"{v:.4f}" if v >= 1e-4 or v == 0 else f"{v:.3g}"
    if unit == "bps":
        return f"{v:,.2f} bps"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return _general(v)


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


# --------------------------------------------------------------------------------------------------- JSON


def _table_json(t: Table) -> dict[str, Any]:
    return {
        "title": t.title,
        "note": t.note,
        "columns": [{"key": c.key, "label": c.label, "unit": c.unit} for c in t.columns],
        "rows": [{c.key: r.get(c.key) for c in t.columns} for r in t.rows],
    }


def report_json(rep: Report) -> dict[str, Any]:
    """The JSON summary of ``rep`` (a plain dict; see the module doc and ``docs/reports.md``)."""
    metrics: dict[str, Any] = {}
    info: dict[str, Any] = {}
    for m in rep.headline:
        metrics[m.key] = m.value
        info[m.key] = {"label": m.label, "unit": m.unit, "section": "headline", "note": m.note}
    for s in rep.sections:
        for m in s.metrics:
            if m.key not in metrics:
                metrics[m.key] = m.value
                info[m.key] = {"label": m.label, "unit": m.unit, "section": s.key, "note": m.note}
    period = None
    if rep.period:
        period = {
            "start": _iso(rep.period[0], True),
            "end": _iso(rep.period[1], True),
            "start_ns": rep.period[0],
            "end_ns": rep.period[1],
        }
    return json_clean(
        {
            "format": FORMAT,
            "version": VERSION,
            "title": rep.title,
            "kind": rep.kind,
            "period": period,
            "info": dict(rep.info),
            "metrics": metrics,
            "metric_info": info,
            "sections": {
                s.key: {
                    "title": s.title,
                    "notes": list(s.notes),
                    "tables": {t.key: _table_json(t) for t in s.tables},
                    "charts": [c.key for c in s.charts],
                }
                for s in rep.sections
            },
        }
    )


def write_json_summary(path: str | os.PathLike[str], summary: Report | Mapping[str, Any]) -> Path:
    """Write a report's JSON summary (or any mapping) as indented UTF-8 JSON, NaN/±inf as ``null``."""
    data = report_json(summary) if isinstance(summary, Report) else json_clean(summary)
    text = json.dumps(data, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    return _atomic_write(Path(path), text)


# --------------------------------------------------------------------------------------------------- HTML


def _num(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    f = float(v)
    if not math.isfinite(f):
        return None
    return float(f"{f:.6g}")


def _axis_format(unit: str) -> dict[str, Any]:
    if unit == "fraction":
        return {"tickformat": ".1%", "hoverformat": ".3%"}
    if unit == "quote":
        return {"tickformat": ",.0f", "hoverformat": ",.2f"}
    if unit == "count":
        return {"tickformat": ",d"}
    return {"hoverformat": ".4g"}


_KIND_COLORS = ("#0969da", "#8250df", "#6e7781", "#bf8700", "#cf222e", "#1a7f37")


def _plotly_spec(c: Chart) -> dict[str, Any]:
    """The plotly figure (data + layout) of one chart, as plain JSON-able dicts."""
    time_x = c.x_kind == "time"

    def xs(v: list) -> list:
        return [
            int(x) // 1_000_000 if time_x and x is not None else (_num(x) if not isinstance(x, str) else x) for x in v
        ]

    data = []
    for i, s in enumerate(c.series):
        color = s.color or _KIND_COLORS[i % len(_KIND_COLORS)]
        if c.kind == "heatmap":
            z = [[_num(v) for v in row] for row in (s.z or [])]
            data.append(
                {
                    "type": "heatmap",
                    "name": s.name,
                    "x": list(s.x),
                    "y": list(s.y),
                    "z": z,
                    "zmid": 0,
                    "colorscale": [[0, "#cf222e"], [0.5, "#f6f8fa"], [1, "#1a7f37"]],
                    "texttemplate": "%{z:.1%}",
                    "hovertemplate": "%{y} %{x}: %{z:.2%}<extra></extra>",
                    "colorbar": {"tickformat": ".1%", "title": {"text": "return"}},
                    "xgap": 2,
                    "ygap": 2,
                }
            )
            continue
        tr: dict[str, Any] = {"name": s.name, "x": xs(s.x), "y": [_num(v) for v in s.y]}
        if s.kind == "bar":
            tr.update(type="bar", marker={"color": color})
        elif s.kind == "markers":
            tr.update(type="scatter", mode="markers", marker={"color": color, "size": 6})
        else:
            tr.update(type="scatter", mode="lines", line={"color": color, "width": 1.4})
            if s.kind == "area":
                tr.update(fill="tozeroy")
        data.append(tr)
    xaxis: dict[str, Any] = {"title": {"text": c.x_title}, "automargin": True}
    if time_x:
        xaxis["type"] = "date"
    elif c.x_kind == "fraction":
        xaxis.update(_axis_format("fraction"))
    elif c.x_kind == "category":
        xaxis["type"] = "category"
    yaxis: dict[str, Any] = {"title": {"text": c.y_title}, "automargin": True}
    if c.kind == "heatmap":
        yaxis["type"] = "category"
        yaxis["autorange"] = "reversed"
    else:
        yaxis.update(_axis_format(c.y_unit))
    layout = {
        "title": {"text": c.title, "x": 0, "font": {"size": 15}},
        "xaxis": xaxis,
        "yaxis": yaxis,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        "legend": {"orientation": "h", "y": -0.22},
        "hovermode": "closest" if c.kind == "heatmap" else "x unified",
        "barmode": "group",
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
        "font": {"family": "system-ui, sans-serif"},
    }
    return {"data": data, "layout": layout}


def _cell(unit: str, v: Any) -> str:
    cls = ' class="num"' if unit not in ("text",) and not isinstance(v, str) else ""
    return f"<td{cls}>{html.escape(format_value(unit, v))}</td>"


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c.label)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(_cell(c.unit, r.get(c.key)) for c in t.columns) + "</tr>\n" for r in t.rows)
    if not t.rows:
        body = f'<tr><td colspan="{len(t.columns)}">none</td></tr>'
    note = f'<p class="chart-reading">{html.escape(t.note)}</p>' if t.note else ""
    return (
        f'<h3>{html.escape(t.title)}</h3><table data-table="{html.escape(t.key)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}</tbody></table>{note}"
    )


def _cards(metrics: list) -> str:
    out = ['<div class="cards">']
    for m in metrics:
        cls = ""
        if (
            m.unit in ("fraction", "quote")
            and not _missing(m.value)
            and m.key in ("total_return", "pnl", "cagr", "excess_return")
        ):
            cls = " pos" if float(m.value) > 0 else (" neg" if float(m.value) < 0 else "")
        note = f'<div class="note">{html.escape(m.note)}</div>' if m.note else ""
        out.append(
            f'<div class="card" data-metric="{html.escape(m.key)}"><div class="label">{html.escape(m.label)}'
            f'</div><div class="value{cls}">{html.escape(format_value(m.unit, m.value))}</div>{note}</div>'
        )
    out.append("</div>")
    return "".join(out)


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def render_html(rep: Report) -> str:
    """The whole self-contained page as a string."""
    t = html.escape(rep.title)
    charts: dict[str, Any] = {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{t}</title>",
        f"<style>{_CSS}</style>",
        "<script>",
        _plotly_js().replace("</script", "<\\/script"),
        "</script>",
        "</head>",
        "<body>",
        f"<h1>{t}</h1>",
    ]
    if rep.subtitle:
        parts.append(f'<p class="sub">{html.escape(rep.subtitle)}</p>')
    if rep.period:
        parts.append(f'<p class="sub">{html.escape(_iso(rep.period[0]))} to {html.escape(_iso(rep.period[1]))}</p>')
    if rep.info:
        parts.append(
            '<p class="sub">'
            + " · ".join(f"{html.escape(k)}: {html.escape(str(v))}" for k, v in rep.info.items())
            + "</p>"
        )
    parts.append(
        "<nav>"
        + '<a href="#headline">Headline</a>'
        + "".join(f'<a href="#{html.escape(s.key)}">{html.escape(s.title.split(":")[0])}</a>' for s in rep.sections)
        + "</nav>"
    )
    parts.append(
        '<section id="headline" data-section="headline"><h2>Headline</h2>' + _cards(rep.headline) + "</section>"
    )
    for s in rep.sections:
        parts.append(
            f'<section id="{html.escape(s.key)}" data-section="{html.escape(s.key)}"><h2>{html.escape(s.title)}</h2>'
        )
        if s.reading:
            parts.append(f'<p class="reading">{html.escape(s.reading)}</p>')
        if s.notes:
            parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in s.notes) + "</ul>")
        if s.metrics:
            parts.append(_cards(s.metrics))
        for c in s.charts:
            cid = f"chart-{c.key}"
            charts[cid] = _plotly_spec(c)
            parts.append(
                f'<div class="chart" id="{html.escape(cid)}" data-chart="{html.escape(c.key)}" '
                f'data-points="{c.points()}"></div>'
                f'<p class="chart-reading">{html.escape(c.reading)}</p>'
            )
        for tb in s.tables:
            parts.append(_table_html(tb))
        parts.append("</section>")
    payload = json.dumps(json_clean(charts), separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    parts += [
        "<footer>LeviBot Stream tear sheet · charts drawn with plotly.js, embedded in this file · "
        "definitions in docs/reports.md</footer>",
        f'<script id="chart-data" type="application/json">{payload}</script>',
        "<script>(function(){var c=JSON.parse(document.getElementById('chart-data').textContent);"
        "var cfg={displaylogo:false,responsive:true};"
        "Object.keys(c).forEach(function(id){var el=document.getElementById(id);"
        "Plotly.newPlot(el,c[id].data,c[id].layout,cfg).then(function(){el.setAttribute('data-rendered','1');});});"
        "})();</script>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def write_html_report(path: str | os.PathLike[str], rep: Report) -> Path:
    """Write the self-contained HTML page of ``rep`` (atomically; parent directories created); returns the path."""
    return _atomic_write(Path(path), render_html(rep))


def write_report(rep: Report, out_dir: str | os.PathLike[str], stem: str) -> tuple[Path, Path]:
    """``<out_dir>/<stem>.html`` and ``<stem>.json``; returns both paths."""
    d = Path(out_dir)
    return write_html_report(d / f"{stem}.html", rep), write_json_summary(d / f"{stem}.json", rep)


# ----------------------------------------------------------------------------------------------- terminal

_TERMINAL_EXTRA = (
    "var_breaches",
    "var_expected_rate",
    "kupiec_p",
    "christoffersen_cc_p",
    "model_auc",
    "dead_letters",
    "signals_received",
)


def terminal_summary(rep: Report, width: int = 34) -> str:
    """A short plain-text summary: the headline, a few risk/model/data figures, the sections' key notes."""
    lines = [rep.title]
    if rep.period:
        lines.append(f"{_iso(rep.period[0])} to {_iso(rep.period[1])}")
    if rep.info:
        lines.append(" · ".join(f"{k}: {v}" for k, v in rep.info.items()))
    lines.append("")
    allm = rep.metrics()
    for m in rep.headline + [allm[k] for k in _TERMINAL_EXTRA if k in allm and allm[k] not in rep.headline]:
        lines.append(f"  {m.label:<{width}} {format_value(m.unit, m.value):>18}")
    notes = [n for s in rep.sections for n in s.notes if s.key in ("signals", "attribution", "risk")]
    for n in notes[:4]:
        lines.append(f"  · {n}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ compare


def compare_summaries(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{key, label, unit, a, b, diff}`` for every metric of two JSON summaries (``a``'s order first, then
    keys only ``b`` has); ``diff`` is ``b - a`` for numbers, None otherwise."""
    ma, mb = a.get("metrics", {}), b.get("metrics", {})
    info = {**b.get("metric_info", {}), **a.get("metric_info", {})}
    keys = list(ma) + [k for k in mb if k not in ma]
    rows = []
    for k in keys:
        va, vb = ma.get(k), mb.get(k)
        num = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (va, vb))
        meta = info.get(k, {})
        rows.append(
            {
                "key": k,
                "label": meta.get("label", k),
                "unit": meta.get("unit", "ratio"),
                "section": meta.get("section", ""),
                "a": va,
                "b": vb,
                "diff": vb - va if num else None,
            }
        )
    return rows


def render_comparison(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    name_a: str = "A",
    name_b: str = "B",
    headline_only: bool = False,
    width: int = 46,
) -> str:
    """Two reports' metrics side by side with the difference (B minus A), as plain text."""
    rows = compare_summaries(a, b)
    if headline_only:
        rows = [r for r in rows if r["section"] == "headline"]
    lines = [
        f"A: {a.get('title', name_a)} ({name_a})",
        f"B: {b.get('title', name_b)} ({name_b})",
        "",
        f"  {'':<{width}} {'A':>16} {'B':>16} {'B minus A':>16}",
    ]
    section = None
    for r in rows:
        if r["section"] != section:
            section = r["section"]
            lines.append(f"  [{section.replace('_', ' ')}]")
        u = r["unit"]
        d = r["diff"]
        dtext = (
            ""
            if d is None
            else (
                format_value(u, d)
                if u not in ("timestamp", "count")
                else (f"{d:+,}" if u == "count" else format_value("seconds", d / 1e9))
            )
        )
        if d is not None and u not in ("count", "timestamp") and d > 0:
            dtext = "+" + dtext
        lines.append(
            f"  {r['label'][:width]:<{width}} {format_value(u, r['a']):>16} {format_value(u, r['b']):>16} {dtext:>16}"
        )
    return "\n".join(lines)
