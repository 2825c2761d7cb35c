"""The `make run` tear sheet in a real browser: Debian's chromium driven by Playwright (``executable_path``; Playwright's
own browser download is not used). Every section renders with data, every chart is drawn, no request leaves the
page, no unit-suffixed field name is visible; the screenshot in docs/img/ (shown by the README) is refreshed."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from flows.settings import REPO_ROOT, Settings
from operators.report import SECTION_KEYS

pytestmark = pytest.mark.clickhouse

DATA = REPO_ROOT / "data" / "market"
FILES = [DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"]
SCREENSHOT = REPO_ROOT / "docs" / "img" / "report.png"
UNIT_SUFFIXED = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)*_(?:frac|quote|ns|s|per_year|pct|bps|ms)\b")
CHROMIUM = os.environ.get("LEVIBOT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

_SECTION_DATA_JS = """
(key) => {
  const s = document.querySelector(`section[data-section="${key}"]`);
  if (!s) return null;
  const cards = [...s.querySelectorAll('.card .value')].filter(v => v.textContent.trim() && v.textContent.trim() !== 'n/a').length;
  const rows = [...s.querySelectorAll('table tbody tr')].filter(r => !/^\\s*none\\s*$/.test(r.textContent)).length;
  const charts = [...s.querySelectorAll('.chart')].map(el => ({
    key: el.dataset.chart, rendered: el.dataset.rendered === '1', svg: !!el.querySelector('svg.main-svg'),
    points: (el.data || []).reduce((n, t) => n + ((t.z || t.y || []).length), 0),
    height: el.getBoundingClientRect().height}));
  return {cards, rows, charts, visible: s.getBoundingClientRect().height > 0, notes: s.querySelectorAll('.notes li').length};
}
"""


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, chdb_path) -> Path:
    from flows.embedded import EMBEDDED_PIPELINE, run_embedded

    var = tmp_path_factory.mktemp("var")
    _, _, html_path = run_embedded(
        Settings(var_dir=var, clickhouse_dsn=f"chdb://{chdb_path}"), FILES, EMBEDDED_PIPELINE, max_bars=700
    )
    return html_path


def test_make_run_report_in_a_real_browser(report_file):
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (make tools installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    url = report_file.resolve().as_uri()
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.on("request", lambda r: requests.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_function(
                "[...document.querySelectorAll('.chart')].every(el => el.dataset.rendered === '1')", timeout=30_000
            )
            assert not errors, errors
            for key in ("headline", *SECTION_KEYS):
                info = page.evaluate(_SECTION_DATA_JS, key)
                assert info is not None and info["visible"], key
                assert info["cards"] or info["rows"] or info["charts"], (key, info)
                for c in info["charts"]:
                    assert c["rendered"] and c["svg"] and c["points"] > 0 and c["height"] > 100, (key, c)
            drawn = page.evaluate("document.querySelectorAll('.chart').length")
            assert drawn >= 10
            text = page.inner_text("body")
            assert not UNIT_SUFFIXED.findall(text), UNIT_SUFFIXED.findall(text)[:5]
            assert "No Telegram signals in this run" in text and "Trades (round trips)" in text
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), clip={"x": 0, "y": 0, "width": 1280, "height": 1600})
        finally:
            browser.close()
    # the page itself is the only request: no CDN, font, image or data call
    assert requests and all(u == url for u in requests), [u for u in requests if u != url]
