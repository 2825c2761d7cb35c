"""The web console in a real browser (Debian's chromium driven by Playwright with ``executable_path``) against a real
``levibot api`` process on the real PostgreSQL and Kafka: log in with a key, open every page and see the stored
data (tables filled, charts drawn), check the session cookie's flags, halt the account from the control page (form,
confirmation) and find the signed command on the control topic and the halt in the overview and the audit page,
refuse a form without its CSRF token, resume. No request leaves the API's address. Second test: a live run (replay
into a live flow storing in PostgreSQL), its data in the console, and a halt from the control page that the running
flow applies (its own audit row on the audit page, no order after it)."""

from __future__ import annotations

import os
import secrets
import shutil

import psycopg
import pytest

from connectors.postgres.api import ApiDatabase
from connectors.postgres.migrate import migrate
from operators.api.keys import make_token, parse_token
from tests.support import metric_total, wait_for
from tests.support.api import CAPITAL, FAST, Replica, store_trading_rows, train_model

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.slow]
CHROMIUM = os.environ.get("LEVIBOT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
KEY = "console-browser-control-key-0123456789"

_PAGE_JS = """
() => ({
  page: document.body.dataset.page,
  rows: Object.fromEntries([...document.querySelectorAll('table[data-table]')].map(t => [t.dataset.table,
          [...t.querySelectorAll('tbody tr')].filter(r => !r.querySelector('td.muted')).length])),
  charts: [...document.querySelectorAll('.chart')].map(el => ({key: el.dataset.chart,
          rendered: el.dataset.rendered === '1', svg: !!el.querySelector('svg.main-svg'),
          points: (el.data || []).reduce((n, t) => n + (t.y || []).length, 0)})),
  cards: Object.fromEntries([...document.querySelectorAll('.card')].map(c => [c.dataset.card,
          c.querySelector('.value').textContent.trim()])),
})
"""


def test_console_in_a_real_browser(kafka_bootstrap, pg_dsn, topic_prefix, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (make tools installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from connectors.control import read_control
    from connectors.kafka.admin import ensure_topics
    from connectors.model_registry import ModelRegistry
    from operators.control.signing import keyring

    ensure_topics(kafka_bootstrap, prefix=topic_prefix)
    migrate(pg_dsn)
    store_trading_rows(pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO signals (id, version, source_chat, source_message_id, symbol, side, kind, entries, "
            "targets, stop, trust, ts, ts_ns) VALUES ('sig-1', 1, 'chat-a', 7, 'BTC-USD', 'long', 'open', "
            "'{30000}', '{31000,32000}', 29000, 0.8, to_timestamp(1800000005), 1800000005000000000)"
        )
    reg = ModelRegistry(tmp_path / "var" / "models")
    model = train_model()
    version = reg.register(
        model,
        feature_set="core-v1",
        feature_set_version=1,
        horizon_ns=60 * 10**9,
        metrics={"cv_calibrated": model.info["cv_calibrated"], "cv_raw": model.info["cv_raw"]},
    )
    reg.promote(version, "first champion")
    db = ApiDatabase(pg_dsn, max_size=1).open()
    tok = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
    kid, sec = parse_token(tok)
    db.create_key(
        key_id=kid,
        name="desk alice",
        secret_hash=FAST.hash(sec),
        scopes=["trade"],
        tier="pro",
        accounts=["default"],
        rate="",
        created_by="pytest",
        expires_at=None,
    )
    db.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEVIBOT_API_")}
    env.update(
        LEVIBOT_PG_DSN=pg_dsn,
        LEVIBOT_KAFKA_BOOTSTRAP=kafka_bootstrap,
        LEVIBOT_TOPIC_PREFIX=topic_prefix,
        LEVIBOT_CONTROL_KEY=KEY,
        LEVIBOT_VAR=str(tmp_path / "var"),
        LEVIBOT_API_COOKIE_SECURE="0",
        LEVIBOT_API_CAPITAL=str(CAPITAL),
        LEVIBOT_API_GRAFANA_URL="http://127.0.0.1:3000/d/levibot",
        LEVIBOT_API_CONTROL_CACHE_S="0.5",
    )
    api = Replica(env, tmp_path / "api.log")
    base = api.url
    requests: list[str] = []
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                ctx = browser.new_context(viewport={"width": 1280, "height": 1400})
                page = ctx.new_page()
                page.on("request", lambda r: requests.append(r.url))
                page.goto(f"{base}/console")
                assert page.url == f"{base}/console/login"
                page.fill("input[name=token]", tok[:-2] + ("AA" if not tok.endswith("AA") else "BB"))
                page.click("form[data-form=login] button[type=submit]")
                assert page.url.endswith("/console/login?error=bad")
                page.fill("input[name=token]", tok)
                page.click("form[data-form=login] button[type=submit]")
                page.wait_for_selector("body[data-page=overview]")
                cookie = {c["name"]: c for c in ctx.cookies()}["levibot_session"]
                assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
                assert sec not in cookie["value"]

                def visit(nav: str) -> dict:
                    page.click(f"header a[data-nav={nav}]")
                    page.wait_for_selector(f"body[data-page={nav}]")
                    page.wait_for_function(
                        "() => [...document.querySelectorAll('.chart')].every(el => el.dataset.rendered === '1')",
                        timeout=20_000,
                    )
                    return page.evaluate(_PAGE_JS)

                seen = {"overview": page.evaluate(_PAGE_JS)}
                page.wait_for_function("() => document.querySelector('#chart-equity').dataset.rendered === '1'")
                seen["overview"] = page.evaluate(_PAGE_JS)
                for nav in ("positions", "orders", "risk", "signals", "models", "audit", "control"):
                    seen[nav] = visit(nav)
                ov = seen["overview"]
                assert ov["cards"]["kill_switch"] == "halted"  # the stored decision: the gate's drawdown switch
                assert ov["cards"]["gate"] == "halted" and ov["cards"]["operator_mode"] == "normal"
                charts = {c["key"]: c for n in seen.values() for c in n["charts"]}
                assert set(charts) == {
                    "equity",
                    "drawdown",
                    "positions_pnl",
                    "component_var",
                    "component_var_by_strategy",
                    "calibration",
                }
                for c in charts.values():
                    assert c["rendered"] and c["svg"] and c["points"] >= 2, c
                assert charts["equity"]["points"] == 2 * 60  # equity and buy-and-hold, one point per stored close
                assert seen["positions"]["rows"]["positions"] == 2
                assert seen["orders"]["rows"] == {"orders": 4, "fills": 4}
                assert seen["risk"]["rows"]["decisions"] == 2 and seen["risk"]["rows"]["strategies"] == 2
                assert seen["signals"]["rows"]["signals"] == 1
                assert seen["models"]["cards"]["champion"] == version and seen["models"]["rows"]["models"] == 1
                assert seen["audit"]["rows"]["audit"] >= 2  # the refused and the accepted login
                assert page.get_attribute("header a[data-nav=grafana]", "href") == "http://127.0.0.1:3000/d/levibot"

                # a form without its CSRF token is refused (and nothing is sent)
                code = page.evaluate("""async () => (await fetch('/console/control', {method: 'POST',
                    headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                    body: 'action=halt&scope=account:default&confirm=yes&reason=forged'})).status""")
                assert code == 403

                # halt: the form, the confirmation with a reason, the signed command on the control topic
                page.click("form[data-form=halt] button")
                page.wait_for_selector("form[data-form=confirm]")
                page.fill("form[data-form=confirm] input[name=reason]", "browser test halt")
                page.click("form[data-form=confirm] button[data-action=confirm]")
                cmd_id = page.get_attribute("[data-command-id]", "data-command-id")
                assert cmd_id
                view = read_control(kafka_bootstrap, f"{topic_prefix}control", keyring(KEY))
                assert [(r.command.id, r.command.action, r.outcome) for r in view.records] == [
                    (cmd_id, "halt", "applied")
                ]
                assert view.state.scope_mode("account:default") == "halted"
                assert view.records[0].command.issuer == f"api:{kid}"
                assert view.records[0].command.reason == "browser test halt"
                page.click("header a[data-nav=overview]")
                page.wait_for_selector("body[data-page=overview]")
                assert page.evaluate(_PAGE_JS)["cards"]["operator_mode"] == "halted"
                page.click("header a[data-nav=audit]")
                page.wait_for_selector("body[data-page=audit]")
                audit_text = page.inner_text("table[data-table=audit]")
                assert cmd_id in audit_text and "api.console.control.halt" in audit_text

                # resume
                page.click("header a[data-nav=control]")
                page.click("form[data-form=resume] button")
                page.wait_for_selector("form[data-form=confirm]")
                page.fill("form[data-form=confirm] input[name=reason]", "browser test done")
                page.click("form[data-form=confirm] button[data-action=confirm]")
                resumed = page.get_attribute("[data-command-id]", "data-command-id")
                view = read_control(kafka_bootstrap, f"{topic_prefix}control", keyring(KEY))
                assert [r.command.id for r in view.records] == [cmd_id, resumed]
                assert view.state.scope_mode("account:default") == "normal"
                page.screenshot(path=str(tmp_path / "console.png"), full_page=True)
                page.click("button[data-action=logout]")
                page.wait_for_selector("form[data-form=login]")
                page.goto(f"{base}/console/risk")
                assert page.url == f"{base}/console/login"
            finally:
                browser.close()
    finally:
        api.stop()
    assert requests and all(u.startswith(base) or u.startswith("data:") for u in requests), [
        u for u in requests if not u.startswith(base)
    ][:5]
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT action, result, split_part(detail, ':', 1), command_id FROM audit "
            "WHERE source = 'api' ORDER BY ts_ns"
        ).fetchall()
    assert [(a, r, d) for a, r, d, _ in rows] == [
        ("api.console.login", "denied", "bad_secret"),
        ("api.console.login", "applied", "login"),
        ("api.console.control.halt", "denied", "csrf"),
        ("api.console.control.halt", "applied", "published"),
        ("api.console.control.resume", "applied", "published"),
    ]
    assert rows[3][3] == cmd_id


def test_console_halts_a_live_flow(kafka_bootstrap, pg_dsn, tmp_path):
    """A live run (replay -> live flow on the sim venue, stores in PostgreSQL): the console shows its data, a halt
    from the control page is applied by the running flow (its own audit row, shown on the audit page) and no order
    follows it; resume."""
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (make tools installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from schemas.events import Order
    from tests.support.flowproc import (
        BAR_ARGS,
        FlowProc,
        TopicCounter,
        create_topics,
        drop_topics,
        flow_env,
        new_prefix,
        read_events,
    )

    prefix = new_prefix("console")
    migrate(pg_dsn)
    env = flow_env(prefix=prefix, var=tmp_path / "var", LEVIBOT_CONTROL_KEY=KEY, LEVIBOT_PG_DSN=pg_dsn)
    procs: list = []
    api = None
    try:
        create_topics(kafka_bootstrap, prefix)
        procs.append(
            FlowProc(
                ["replay", "--max-bars", "6000", "--speed", "60000", "--no-progress"], env, tmp_path / "replay.log"
            )
        )
        from tests.support.flowproc import free_ports

        m_port = free_ports(1)[0]
        flow = FlowProc(
            ["run", "--live", "--venue", "sim", "--stores", "postgres", *BAR_ARGS],
            dict(env, LEVIBOT_METRICS_PORT=str(m_port)),
            tmp_path / "flow.log",
        )
        procs.append(flow)
        orders = TopicCounter(kafka_bootstrap, f"{prefix}orders")
        wait_for(lambda: orders.count() > 20 or not flow.running, 180, "the first orders", interval_s=0.3)
        assert flow.running, flow.tail()

        def stored(table: str) -> int:
            with psycopg.connect(pg_dsn) as conn:
                return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

        wait_for(
            lambda: stored("fills") > 5 and stored("bars") > 5, 120, "fills and bars in PostgreSQL", interval_s=0.3
        )
        db = ApiDatabase(pg_dsn, max_size=1).open()
        tok = make_token(secrets.token_bytes(6), secrets.token_bytes(32))
        kid, sec = parse_token(tok)
        db.create_key(
            key_id=kid,
            name="desk",
            secret_hash=FAST.hash(sec),
            scopes=["trade"],
            tier="pro",
            accounts=["default"],
            rate="",
            created_by="pytest",
            expires_at=None,
        )
        db.close()
        api_env = {k: v for k, v in env.items() if not k.startswith("LEVIBOT_API_")}
        api_env.update(LEVIBOT_API_COOKIE_SECURE="0", LEVIBOT_API_CONTROL_CACHE_S="0.5", LEVIBOT_API_READ_CACHE_S="0")
        api = Replica(api_env, tmp_path / "api.log")
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1400})
                page.goto(f"{api.url}/console/login")
                page.fill("input[name=token]", tok)
                page.click("form[data-form=login] button[type=submit]")
                page.wait_for_selector("body[data-page=overview]")
                page.wait_for_function("() => document.querySelector('#chart-equity').dataset.rendered === '1'")
                ov = page.evaluate(_PAGE_JS)
                assert {c["key"]: c["points"] for c in ov["charts"]}["equity"] > 2
                assert ov["cards"]["operator_mode"] == "normal"
                page.click("header a[data-nav=positions]")
                page.wait_for_selector("body[data-page=positions]")
                assert page.evaluate(_PAGE_JS)["rows"]["positions"] >= 1
                page.click("header a[data-nav=control]")
                page.click("form[data-form=halt] button")
                page.fill("form[data-form=confirm] input[name=reason]", "console live halt")
                page.click("form[data-form=confirm] button[data-action=confirm]")
                cmd_id = page.get_attribute("[data-command-id]", "data-command-id")

                def flow_rows() -> list:
                    with psycopg.connect(pg_dsn) as conn:
                        return conn.execute(
                            "SELECT result, ts_ns FROM audit WHERE source = 'flow' AND command_id = %s", (cmd_id,)
                        ).fetchall()

                applied = wait_for(flow_rows, 120, "the flow to apply the console's halt", interval_s=0.3)
                assert applied[0][0] == "applied"
                n = orders.count()

                # the flow goes on reading ticks while halted: 1,600 more (100 decision bars of each symbol), or the
                # whole replay (2 files x 6,000 bars x 8 ticks)
                def ticks_read() -> float:
                    return metric_total(m_port, "levibot_events_in_total", stage="ingest", topic=f"{prefix}ticks")

                read = wait_for(ticks_read, 30, "the flow's ingest count", procs=[flow], retry_on=(OSError,))
                wait_for(
                    lambda: ticks_read() >= min(read + 1_600, 2 * 6_000 * 8),
                    60,
                    "ticks read while halted",
                    procs=[flow],
                    retry_on=(OSError,),
                )
                page.click("header a[data-nav=audit]")
                page.wait_for_selector("body[data-page=audit]")
                rows = page.eval_on_selector_all(
                    "table[data-table=audit] tbody tr", "rs => rs.map(r => [...r.children].map(c => c.textContent))"
                )
                mine = [r for r in rows if cmd_id in r]
                assert sorted((r[1], r[5]) for r in mine) == [("api", "applied"), ("flow", "applied")], rows[:5]
                halt_ts = applied[0][1]
                after = [o for o in read_events(kafka_bootstrap, f"{prefix}orders", Order) if o.ts > halt_ts]
                assert not after, f"{len(after)} orders after the halt ({orders.count() - n} since it)"
                page.click("header a[data-nav=control]")
                page.click("form[data-form=resume] button")
                page.fill("form[data-form=confirm] input[name=reason]", "console live resume")
                page.click("form[data-form=confirm] button[data-action=confirm]")
                assert page.get_attribute("[data-command-id]", "data-command-id")
            finally:
                browser.close()
        orders.close()
    finally:
        if api is not None:
            api.stop()
        for p in procs:
            p.kill()
        drop_topics(kafka_bootstrap, [prefix])
