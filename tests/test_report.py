"""HTML and JSON reports (connectors.report): self-contained, well-formed, escaped, spikes kept."""

from __future__ import annotations

import doctest
import json
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import connectors.report as report
from connectors.report import downsample_minmax, format_value, svg_line_chart, write_html_report, write_json_summary
from operators.performance import NS_PER_S, drawdown_series, summarize

SVG = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert("x")</script> & co'


def _curve(n: int = 5000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = (1_650_000_000 + np.arange(n, dtype=np.int64) * 1800) * NS_PER_S
    return ts, 1e4 * np.cumprod(1 + rng.normal(0.0002, 0.01, n))


def _points(poly: ET.Element) -> np.ndarray:
    return np.array([[float(v) for v in p.split(",")] for p in poly.get("points", "").split()])


def test_doctests():
    res = doctest.testmod(report, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 5 and res.failed == 0


def test_report_is_written_self_contained_and_well_formed(tmp_path):
    ts, eq = _curve()
    summary = summarize(ts, eq, trade_pnls=[1.0, -2.0, 3.0], var_forecasts=np.full(eq.size - 1, -0.02))
    path = write_html_report(tmp_path / "out" / "report.html", title="BTC run 1", summary=summary,
                             equity_ts=ts, equity=eq, tables={"Orders": [{"id": "o1", "qty": 1.5}]})
    assert path == tmp_path / "out" / "report.html" and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    root = ET.fromstring(text.split("\n", 1)[1])  # the whole document is well-formed XML
    assert root.tag == "html"
    assert "BTC run 1" in root.findtext("head/title")
    for key in summary:
        assert key in text, key
    svgs = root.findall(f".//{SVG}svg")
    assert len(svgs) == 2  # equity and drawdown
    for svg_text in re.findall(r"<svg\b.*?</svg>", text, flags=re.S):
        svg = ET.fromstring(svg_text)  # each picture parses on its own
        lines = svg.findall(f"{SVG}polyline")
        assert len(lines) == 1 and 2 <= len(_points(lines[0])) <= 2000
        labels = [t.text or "" for t in svg.findall(f"{SVG}text")]
        assert sum(bool(re.fullmatch(r"\d{4}-\d\d-\d\d", s)) for s in labels) >= 2  # UTC date ticks
        assert "time (UTC)" in labels
    # self-contained: no scripts, links, external resources; the only URL is the SVG namespace
    assert "<script" not in text and "<link" not in text and "src=" not in text and "@import" not in text
    assert set(re.findall(r"https?://[^\s\"']+", text)) <= {"http://www.w3.org/2000/svg"}
    assert "Orders" in text and "o1" in text


def test_summary_formatting_in_report(tmp_path):
    ts = np.arange(4, dtype=np.int64) * 86_400 * NS_PER_S + 1_700_000_000 * NS_PER_S
    eq = np.array([100.0, 110.0, 99.0, 120.0])
    s = summarize(ts, eq, period_s=86_400)
    text = write_html_report(tmp_path / "r.html", title="t", summary=s, equity_ts=ts, equity=eq).read_text()
    assert "<th>max_drawdown_frac</th><td class=\"num\">10.00 %</td>" in text
    assert "<th>total_return_frac</th><td class=\"num\">20.00 %</td>" in text
    assert "<th>start_ts_ns</th><td class=\"num\">2023-11-14 22:13:20 UTC</td>" in text
    assert "<th>sortino</th>" in text and "n/a" not in text.split("<th>sharpe</th>")[1][:40]


def test_format_value_units():
    assert format_value("a_frac", 0.1) == "10.00 %"
    assert format_value("a_frac", -0.0000123) == "-0.00123 %"
    assert format_value("x_quote", -1234.5) == "-1,234.50"
    assert format_value("d_s", 90_000.0) == "90,000 s (1.0 d)"
    assert format_value("k", float("inf")) == "∞" and format_value("k", None) == "n/a"
    assert format_value("k", True) == "yes" and format_value("k", "text") == "text"
    assert format_value("n", np.int64(5)) == "5" and format_value("v", np.float32(0.5)) == "0.5"


def test_malicious_text_is_escaped(tmp_path):
    ts, eq = _curve(50)
    summary = {"sharpe": 1.0, EVIL: EVIL}
    path = write_html_report(tmp_path / "r.html", title=EVIL, summary=summary, equity_ts=ts, equity=eq,
                             tables={EVIL: [{EVIL: EVIL, "n": 1}, {"other": "<b>bold</b>"}]})
    text = path.read_text()
    assert "<script" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in text
    root = ET.fromstring(text.split("\n", 1)[1])
    assert root.findtext("head/title") == EVIL  # escaped on the way in, the same text on the way out
    assert root.findtext("body/h1") == EVIL
    assert ET.fromstring(svg_line_chart(ts, eq, title=EVIL, y_label=EVIL)).findtext(f"{SVG}title") == EVIL


def test_given_drawdown_and_computed_drawdown_draw_the_same(tmp_path):
    ts, eq = _curve(300)
    a = write_html_report(tmp_path / "a.html", title="t", summary={}, equity_ts=ts, equity=eq).read_text()
    b = write_html_report(tmp_path / "b.html", title="t", summary={}, equity_ts=ts, equity=eq,
                          drawdown=drawdown_series(eq)).read_text()
    assert a == b
    with pytest.raises(ValueError):
        write_html_report(tmp_path / "c.html", title="t", summary={}, equity_ts=ts, equity=eq, drawdown=[0.0])


@pytest.mark.parametrize("eq", [[100.0], [100.0, 100.0, 100.0], [5.0, 4.0]])
def test_degenerate_curves_still_render(tmp_path, eq):
    ts = 1_700_000_000 * NS_PER_S + np.arange(len(eq), dtype=np.int64) * 60 * NS_PER_S
    text = write_html_report(tmp_path / "r.html", title="t", summary=summarize(ts, eq), equity_ts=ts,
                             equity=eq).read_text()
    ET.fromstring(text.split("\n", 1)[1])
    assert "nan" not in text.lower().replace("n/a", "")


def test_spike_survives_in_the_picture():
    n = 100_000
    ts = (1_700_000_000 + np.arange(n, dtype=np.int64)) * NS_PER_S
    y = np.full(n, 100.0)
    y[31_337], y[77_777] = 250.0, 10.0  # one-sample spikes, up and down
    svg = ET.fromstring(svg_line_chart(ts, y, title="spikes"))
    pts = _points(svg.find(f"{SVG}polyline"))
    assert len(pts) <= 2000
    ys = pts[:, 1]
    assert np.sum(ys == ys.min()) == 1 and np.sum(ys == ys.max()) == 1  # both spikes drawn as their own points
    xs = pts[:, 0]
    assert np.all(np.diff(xs) >= 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=3000),
       st.integers(4, 300))
def test_downsampling_keeps_extremes_order_and_bounds(values, max_points):
    y = np.asarray(values)
    x = np.arange(y.size) * 7
    xs, ys = downsample_minmax(x, y, max_points)
    assert xs.size <= max_points
    assert ys.min() == y.min() and ys.max() == y.max()
    assert np.all(np.diff(xs) > 0)  # a subsequence, in order
    assert xs[0] == x[0] and xs[-1] == x[-1]
    np.testing.assert_array_equal(ys, y[xs // 7])
    if y.size <= max_points:
        np.testing.assert_array_equal(ys, y)


def test_json_summary(tmp_path):
    s = summarize(np.arange(3) * NS_PER_S, [1.0, 1.0, 1.0])
    s["np_value"] = np.float64(2.5)
    path = write_json_summary(tmp_path / "x" / "summary.json", s)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text)
    assert list(back) == list(s)
    assert back["sharpe"] is None and back["n_marks"] == 3 and back["np_value"] == 2.5
    assert all(v is None or not isinstance(v, float) or math.isfinite(v) for v in back.values())
    assert not list(tmp_path.glob("x/.*tmp"))  # no temporary files left behind
