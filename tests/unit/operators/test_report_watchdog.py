"""The execution-report watchdog: the pure logic (operators/watchdog.py) on real Order / ExecutionReport events, and
its timer (connectors/resilience.py ReportSilenceWatchdog) with the real signing code and a real metrics registry.
The live test (the flow with no venue answering, the command on `control`, the account reduce-only, the audit row,
the alert rule through a real Prometheus) is tests/integration/flows/test_report_watchdog_live.py."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from connectors.metrics import FlowMetrics
from connectors.resilience import ReportSilenceWatchdog
from operators.control.signing import sign, verify
from operators.watchdog import ReportWatchdog, S
from schemas.events import ExecutionReport, Order
from tests.support import wait_for

T0 = 1_800_000_000 * S


def order(i: int, symbol: str = "BTC-USD") -> Order:
    return Order(order_id=f"ord-{i}", strategy="trend", symbol=symbol, side="buy", qty=0.1, type="market", ts=T0 + i)


def report(i: int, kind: str = "ack", account: str = "default", seq: int = 0) -> ExecutionReport:
    fill = {"last_qty": 0.1, "last_price": 100.0} if kind in ("fill", "partial_fill") else {}
    return ExecutionReport(
        id=f"paper:{account}:{seq}",
        account=account,
        venue="paper",
        kind=kind,
        seq=seq,
        client_order_id=f"ord-{i}",
        symbol="BTC-USD",
        side="buy",
        ts=T0 + i,
        **fill,
    )


def test_an_order_answered_by_any_report_kind_is_not_unanswered():
    w = ReportWatchdog(timeout_s=10)
    kinds = ("ack", "partial_fill", "fill", "cancel", "reject", "expire")
    w.sent([order(i) for i in range(len(kinds) + 1)], now_ns=0)
    w.reported([report(i, k, seq=i) for i, k in enumerate(kinds)], now_ns=S)
    assert list(w.pending) == [f"ord-{len(kinds)}"]
    assert w.status(now_ns=5 * S) == (1, 5.0)
    positions = ExecutionReport(id="paper:default:99", venue="paper", kind="positions", seq=99, ts=T0)
    w.reported([positions], now_ns=6 * S)  # a snapshot answers no order
    assert len(w.pending) == 1


def test_fires_once_per_silence_with_the_oldest_order_and_rearms_when_the_venue_answers():
    w = ReportWatchdog(timeout_s=10)
    w.sent([order(1), order(2)], now_ns=0)
    w.sent([order(3)], now_ns=4 * S)
    assert w.check(now_ns=9 * S) == []
    [s] = w.check(now_ns=10 * S)
    assert (s.account, s.oldest_order_id, s.oldest_symbol, s.unanswered, s.oldest_age_s) == (
        "default",
        "ord-1",
        "BTC-USD",
        3,
        10.0,
    )
    assert "ord-1" in s.reason and "within 10s" in s.reason and "3 order(s)" in s.reason
    assert w.check(now_ns=20 * S) == []  # once
    w.reported([report(1), report(2, seq=1)], now_ns=21 * S)  # ord-3 still waits 17 s: not re-armed yet
    assert not w.armed("default")
    w.reported([report(3, seq=2)], now_ns=22 * S)
    assert w.armed("default") and not w.pending
    w.sent([order(4)], now_ns=30 * S)  # a new silence fires again
    assert [x.oldest_order_id for x in w.check(now_ns=41 * S)] == ["ord-4"]


def test_orders_re_sent_after_a_recovery_whose_report_was_read_first_are_not_unanswered():
    w = ReportWatchdog(timeout_s=1)
    w.reported([report(7)], now_ns=0)  # the report read again from the snapshot's offset ...
    w.sent([order(7)], now_ns=S)  # ... before the re-sent copy of its order
    w.sent([order(8)], now_ns=S)
    w.sent([order(8)], now_ns=3 * S)  # a copy keeps the first send time
    assert list(w.pending) == ["ord-8"] and w.pending["ord-8"][0] == S


def test_accounts_are_watched_separately_and_memory_is_bounded():
    w = ReportWatchdog(timeout_s=1, account_of=lambda s: "a" if s == "BTC-USD" else "b", remember=3)
    w.sent([order(1, "BTC-USD"), order(2, "ETH-USD")], now_ns=0)
    w.reported([report(2, account="b")], now_ns=0)
    assert [s.account for s in w.check(now_ns=2 * S)] == ["a"]
    w.sent([order(i) for i in range(10, 20)], now_ns=3 * S)
    assert len(w.pending) == 3 and w.dropped == 8
    w.reported([report(i, seq=i) for i in range(30, 40)], now_ns=3 * S)
    assert len(w._answered) == 3
    with pytest.raises(ValueError):
        ReportWatchdog(timeout_s=0)


class ListSender:
    def __init__(self) -> None:
        self.sent: list = []

    def send(self, events) -> int:
        self.sent.extend(events)
        return len(events)


def test_the_timer_sends_one_signed_reduce_only_and_sets_its_metrics():
    key = b"0123456789abcdef-watchdog-key"
    reg = CollectorRegistry()
    fm = FlowMetrics(reg)
    fm.init_self_reduce_only()
    sender = ListSender()
    wd = ReportSilenceWatchdog(sender, lambda c: sign(c, key), timeout_s=0.3, metrics=fm).start()
    try:
        wd.on_orders([order(1), order(2)])
        wd.on_reports([report(2)])
        wait_for(lambda: sender.sent, 10, "a reduce-only after the silence", interval_s=0.02)
        time.sleep(0.5)  # no second command for the same silence
    finally:
        wd.stop()
    [cmd] = sender.sent
    assert (cmd.action, cmd.scope, cmd.issuer) == ("reduce_only", "account:default", "levibot-flow")
    assert "ord-1" in cmd.reason and "no execution report" in cmd.reason
    assert verify(cmd, {"default": key}).ok
    assert reg.get_sample_value("levibot_self_reduce_only_total", {"cause": "reports_silent"}) == 1
    assert reg.get_sample_value("levibot_self_reduce_only_total", {"cause": "orders_unpublishable"}) == 0
    assert reg.get_sample_value("levibot_orders_unanswered") == 1
    assert reg.get_sample_value("levibot_oldest_unanswered_order_seconds") >= 0.3


def test_no_key_means_no_command_but_no_crash():
    sender = ListSender()
    wd = ReportSilenceWatchdog(sender, None, timeout_s=0.01)
    wd.on_orders([order(1)])
    time.sleep(0.05)
    assert wd.check() == [None] and sender.sent == []
