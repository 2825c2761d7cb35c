"""Cancel requests to a remote venue (`order.cancels`): a halt, a reduce-only or a reconciliation mismatch stops the
orders the account already sent, not only the children it still holds. The execution stage asks once per order and
keeps counting the order as in flight until the venue says how it ended; the paper venue cancels what is left, leaves
finished orders alone, and remembers a request that overtook its order (live, with `levibot paper-venue` on the real
broker: tests/integration/flows/test_remote_cancels_live.py)."""

from __future__ import annotations

from collections import namedtuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.execution.paper_venue import PaperVenue
from operators.execution.stage import ExecutionStage
from operators.messages import Emitted
from schemas.codec import decode_many, encode
from schemas.events import CancelRequest, ExecutionReport, Order, PortfolioSnapshot, RiskDecision

T0 = 1_700_000_000_000_000_000
NS = 1_000_000_000
Tk = namedtuple("Tk", "symbol ts price qty")


def _decision(i: int, sym: str = "BTC-USD", side: str = "buy", qty: float = 3.0, strategy: str = "s") -> RiskDecision:
    return RiskDecision(
        id=f"rd:{i}",
        intent_id=str(i),
        symbol=sym,
        ts=T0,
        action="approved",
        requested_qty=qty,
        approved_qty=qty,
        portfolio=PortfolioSnapshot(equity=1e6),
        strategy=strategy,
        side=side,
    )


def _ack(seq: int, o: Order) -> ExecutionReport:
    return ExecutionReport(
        id=f"v:default:{seq}",
        venue="v",
        kind="ack",
        seq=seq,
        client_order_id=o.order_id,
        symbol=o.symbol,
        side=o.side,
        order_qty=o.qty,
        leaves_qty=o.qty,
        ts=o.ts,
    )


def _remote() -> ExecutionStage:
    return ExecutionStage(None, execution="twap", twap_horizon_s=30.0, twap_slice_s=10.0)


def test_a_halt_withdraws_unsent_children_and_asks_the_venue_to_cancel_sent_ones():
    ex = _remote()
    out = Emitted()
    ex.submit(_decision(1), "s", T0, 1.0, False, T0, out)
    assert len(out.orders) == 1 and len(ex.children) == 2  # the first child goes now, two wait for their time
    sent = out.orders[0]
    ex.apply([_ack(0, sent)], out)
    assert ex.in_flight("BTC-USD") == pytest.approx(3.0)

    halt = Emitted()
    assert ex.on_command("halt", "account:default", T0 + NS, halt) == []
    assert [(c.client_order_id, c.reason, c.ts, c.id) for c in halt.cancels] == [
        (sent.order_id, "operator_halt", T0 + NS, f"cxl:{sent.order_id}")
    ]
    assert halt.orders == []
    # the withdrawn children are gone, the sent one still counts until the venue answers
    assert list(ex.oms.open) == [sent.order_id] and ex.in_flight("BTC-USD") == pytest.approx(sent.qty)
    assert {ex.oms.state(o).reason for o in ex.oms.finished} == {"withdrawn_operator_halt"}
    again = Emitted()
    ex.on_command("halt", "account:default", T0 + 2 * NS, again)
    assert again.cancels == [], "one request per order"
    ex.send_due(None, again)
    assert again.orders == [], "withdrawn children are never sent"
    # the venue's cancel ends it
    ex.apply(
        [
            ExecutionReport(
                id="v:default:1",
                venue="v",
                kind="cancel",
                seq=1,
                client_order_id=sent.order_id,
                symbol="BTC-USD",
                side="buy",
                order_qty=sent.qty,
                reason="operator_halt",
                ts=T0 + NS,
            )
        ],
        out,
    )
    assert ex.in_flight("BTC-USD") == 0.0 and ex.oms.state(sent.order_id).status == "cancelled"


def test_reduce_only_cancels_only_what_adds_risk_and_scopes_are_honoured():
    ex = ExecutionStage(None, execution="market")
    out = Emitted()
    ex.submit(_decision(1, "BTC-USD", "buy"), "a", T0, 1.0, False, T0, out)  # adds risk
    ex.submit(_decision(2, "ETH-USD", "sell"), "a", T0, 0.0, True, T0, out)  # reduces
    ex.submit(_decision(3, "ETH-USD", "buy"), "b", T0, 1.0, False, T0, out)  # adds risk, strategy b
    btc, eth_red, eth_b = out.orders
    ro = Emitted()
    ex.on_command("reduce_only", "symbol:ETH-USD", T0 + NS, ro)
    assert [c.client_order_id for c in ro.cancels] == [eth_b.order_id]
    assert ro.cancels[0].reason == "operator_reduce_only" and ro.cancels[0].strategy == "b"
    st_halt = Emitted()
    ex.on_command("halt", "strategy:a", T0 + 2 * NS, st_halt)
    assert [c.client_order_id for c in st_halt.cancels] == [btc.order_id, eth_red.order_id]
    nothing = Emitted()
    ex.on_command("resume", "account:default", T0 + 3 * NS, nothing)
    ex.on_command("set_limit", "account:default", T0 + 3 * NS, nothing)
    assert nothing.cancels == []


def test_in_process_halt_cancels_at_the_venue_and_sends_no_request():
    from operators.execution.broker import BrokerConfig
    from operators.execution.venue import SimVenue

    ex = ExecutionStage(
        SimVenue(1e6, BrokerConfig(latency_s=0.0)), execution="twap", twap_horizon_s=30.0, twap_slice_s=10.0
    )
    out = Emitted()
    ex.apply(ex.submit(_decision(1), "s", T0, 1.0, False, T0, out), out)
    halt = Emitted()
    reps = ex.on_command("halt", "account:default", T0 + NS, halt)
    ex.apply(reps, halt)
    assert halt.cancels == [] and {r.kind for r in reps} == {"cancel"} and len(reps) == 3
    assert not ex.oms.open


def _venue(**kw) -> PaperVenue:
    return PaperVenue(
        ("BTC-USD",),
        cash=1e6,
        latency_s=0.0,
        max_participation=0.5,
        half_spread_bps=0.0,
        impact_k_bps=0.0,
        taker_fee_bps=0.0,
        **kw,
    )


def _order(oid: str, qty: float = 3.0, ts: int = T0) -> Order:
    return Order(order_id=oid, strategy="s", symbol="BTC-USD", side="buy", qty=qty, type="market", ts=ts)


def _req(oid: str, account: str = "default", reason: str = "operator_halt") -> CancelRequest:
    return CancelRequest(
        id=f"cxl:{oid}", account=account, client_order_id=oid, symbol="BTC-USD", strategy="s", reason=reason, ts=T0 + 5
    )


def test_the_paper_venue_cancels_the_remainder_of_a_working_order():
    v = _venue()
    v.submit(_order("o1"))
    (part,) = v.on_ticks([Tk("BTC-USD", T0 + 1, 100.0, 4.0)])
    assert part.kind == "partial_fill" and part.cum_qty == 2.0
    (c,) = v.on_cancel_request(_req("o1"))
    assert (c.kind, c.cum_qty, c.leaves_qty, c.reason, c.client_order_id) == ("cancel", 2.0, 1.0, "operator_halt", "o1")
    assert v.on_ticks([Tk("BTC-USD", T0 + 2, 100.0, 4.0)]) == [], "nothing fills after the cancel"
    assert v.on_cancel_request(_req("o1")) == [], "a repeated request changes nothing"
    assert v.position("BTC-USD") == 2.0


def test_the_paper_venue_leaves_finished_orders_and_other_accounts_alone():
    v = _venue()
    v.submit(_order("o1", qty=1.0))
    (f,) = v.on_ticks([Tk("BTC-USD", T0 + 1, 100.0, 4.0)])
    assert f.kind == "fill"
    assert v.on_cancel_request(_req("o1")) == []
    v.submit(_order("o2"))
    assert v.on_cancel_request(_req("o2", account="other")) == []
    assert "o2" in v.working["BTC-USD"] and v.pending_cancels == {}


def test_a_request_that_overtakes_its_order_cancels_it_on_arrival():
    v = _venue()
    assert v.on_cancel_request(_req("late")) == []
    (c,) = v.submit(_order("late"))
    assert (c.kind, c.reason, c.leaves_qty, c.cum_qty) == ("cancel", "operator_halt", 3.0, 0.0)
    assert v.on_ticks([Tk("BTC-USD", T0 + 1, 100.0, 4.0)]) == [] and v.position("BTC-USD") == 0.0
    assert v.pending_cancels == {} and v.submit(_order("late")) == [], "and the id stays used"


def test_pending_requests_are_bounded():
    v = _venue()
    v.max_pending_cancels = 3
    for i in range(5):
        v.on_cancel_request(_req(f"x{i}"))
    assert list(v.pending_cancels) == ["x2", "x3", "x4"]


def test_the_account_stage_books_a_venue_cancel_after_its_request():
    """Through the account stage: a halt sends the request, the cancel report from the paper venue closes the order,
    and the book equals the venue's fills."""
    from operators.account.stage import AccountConfig, AccountStage
    from operators.messages import SymbolUpdate
    from schemas.events import ControlCommand

    acc = AccountStage(
        AccountConfig(symbols=("BTC-USD",), capital=100_000.0, execution="market", gate="position_cap"),
        remote_venue=True,
    )
    acc.on_update(SymbolUpdate("BTC-USD", None, [], [], T0 + 10))  # the account's event time: reports before it apply
    v = _venue()
    o = _order("o1", qty=3.0)
    acc.execution.oms.new(o)
    for r in v.submit(o) + v.on_ticks([Tk("BTC-USD", T0 + 1, 100.0, 4.0)]):
        acc.on_reports([r])
    cmd = ControlCommand(
        id="cmd-1", issuer="ops", scope="account:default", action="halt", parameters={}, reason="test", ts=T0 + 2
    )
    out = acc.on_control([cmd])
    assert [c.client_order_id for c in out.cancels] == ["o1"]
    (rep,) = v.on_cancel_request(out.cancels[0])
    acc.on_reports([rep])
    assert not acc.execution.oms.open and acc.ledger.position("BTC-USD") == pytest.approx(2.0)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=400))
def test_the_cancel_decoder_turns_any_bytes_into_a_request_or_a_reason(raw):
    good = encode(_req("o1"))
    for blob in (raw, good[: len(raw) % (len(good) + 1)] + raw):
        events, failures = decode_many([blob], CancelRequest)
        assert len(events) + len(failures) == 1
