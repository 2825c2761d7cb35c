"""A remote venue's reports are applied in event time: the account decides the same whatever the arrival order of
reports and ticks, so a recovery that reads the venue's reports long before the ticks it replays re-creates the
very orders of the first run (same ids, same content) and applies each report once, to a known order.

The venue is the paper venue in process; the flow's topics are modelled by the order in which the test hands the
account its updates and the venue's reports (docs/execution.md, "Reports in event time")."""

from __future__ import annotations

import pickle
import random
from collections import namedtuple

import numpy as np
import pytest

from operators.account.report_hold import ReportHold
from operators.account.stage import AccountConfig, AccountStage
from operators.execution.paper_venue import PaperVenue
from operators.ids import stable_id
from operators.messages import DecisionPoint, SymbolUpdate, TickColumns
from schemas.events import Intent

SYMS = ("BTC-USD", "ETH-USD")
NS = 1_000_000_000
BAR = 1800 * NS
T0 = 1_700_000_000 * NS
Tk = namedtuple("Tk", "symbol ts price qty")
R = namedtuple("R", "seq ts")


def _updates(closes, n_bars: int = 240, seed: int = 7) -> list[tuple[SymbolUpdate, list]]:
    """Per bar and symbol: six trades inside the bar (the venue fills on them) and a decision point at the close,
    with an intent whose target moves every few bars; each update with its trades for the venue."""
    rng = np.random.default_rng(seed)
    out = []
    target = dict.fromkeys(SYMS, 0.0)
    for i in range(n_bars):
        t = T0 + (i + 1) * BAR
        for s in SYMS:
            p = float(closes[s][i])
            ticks = [Tk(s, t - BAR + (k + 1) * 290 * NS, p * (1 + 1e-4 * (k - 3)), 40.0) for k in range(6)]
            it = None
            if i > 30 and rng.random() < 0.4:
                target[s] = float(np.round(rng.uniform(-1, 1), 2))
                it = Intent(
                    id=stable_id("int", "t", s, t, target[s]),
                    symbol=s,
                    strategy="t",
                    target=target[s],
                    confidence=1.0,
                    price=p,
                    ts=t,
                    contributions={"t": target[s]},
                )
            out.append(
                (SymbolUpdate(s, t - BAR, TickColumns(s, ticks, t - BAR), [DecisionPoint(s, t, p, it)], t), ticks)
            )
    return out


def _account() -> AccountStage:
    return AccountStage(
        AccountConfig(
            symbols=SYMS,
            capital=100_000.0,
            fraction=0.8,
            execution="twap",
            twap_horizon_s=3600.0,
            twap_slice_s=900.0,
            risk_window=200,
        ),
        remote_venue=True,
    )


def _venue() -> PaperVenue:
    # orders work for a while (latency, 2 % of each trade) so that reports of one order span several decisions
    return PaperVenue(
        SYMS, cash=100_000.0, latency_s=600.0, max_participation=0.02, ttl_s=4 * 3600.0, snapshot_every=25
    )


def _live(updates, *, crash_at: int | None = None, snapshot_at: int | None = None):
    """The first run: the venue reads each batch of trades just before the account does (it keeps up with the
    market data), and the account reads the venue's reports before its next batch. Returns the orders sent, the
    decisions, every report in topic order, the account, and (with ``snapshot_at``) the pickled account after that
    update with the number of reports it had read."""
    acc, venue = _account(), _venue()
    orders, decisions, reports, pending = [], [], [], []
    snap = None
    for k, (u, ticks) in enumerate(updates):
        if k == crash_at:
            break
        pending += venue.on_ticks(ticks)
        out = acc.on_reports(pending)
        reports += pending
        pending = []
        out2 = acc.on_update(u)
        orders += out.orders + out2.orders
        decisions += out2.decisions
        for o in out.orders + out2.orders:
            pending += venue.submit(o)
        if k == snapshot_at:
            snap = (pickle.dumps(acc), len(reports))
    return orders, decisions, reports + pending, acc, venue, snap


def _counts(acc: AccountStage) -> tuple:
    return acc.oms.ignored, acc.oms.duplicates, acc.mismatches, acc.adopted


def test_the_hold_releases_in_order_and_only_what_is_due():
    h = ReportHold()
    h.add([R(0, 5), R(1, 9), R(2, 7), R(3, 12)])
    assert [r.seq for r in h.due(9)] == [0]  # the report dated 9 is not before 9, and the one behind it waits
    assert h.head_ts() == 9 and len(h) == 3
    assert [r.seq for r in pickle.loads(pickle.dumps(h)).due(None)] == [1, 2, 3]
    assert [r.seq for r in h.due(13)] == [1, 2, 3] and h.due(100) == [] and h.held_max == 4


def test_reports_ahead_of_the_account_wait_for_its_event_time():
    """A fill dated after the account's event time is applied only once the ticks have caught up with it."""
    acc = _account()
    venue = PaperVenue(SYMS, latency_s=0.0, max_participation=1.0)
    o_t = T0 + 10 * NS
    acc.on_update(SymbolUpdate("BTC-USD", None, [], [], o_t))
    acc.on_update(SymbolUpdate("ETH-USD", None, [], [], o_t))
    from schemas.events import Order

    o = Order(order_id="o1", strategy="t", symbol="BTC-USD", side="buy", qty=1.0, type="market", ts=o_t)
    acc.oms.new(o)
    reps = venue.submit(o) + venue.on_ticks([Tk("BTC-USD", o_t + 5 * NS, 100.0, 10.0)])
    assert [r.kind for r in reps] == ["ack", "fill"]
    out = acc.on_reports(reps)
    assert [r.kind for r in out.reports] == ["ack"] and acc.ledger.position("BTC-USD") == 0.0  # the fill waits
    out = acc.on_update(SymbolUpdate("BTC-USD", o_t, [], [], o_t + 5 * NS))
    assert out.reports == [], "ETH has not reached the fill's time yet: the account's barrier is still before it"
    out = acc.on_update(SymbolUpdate("ETH-USD", o_t, [], [], o_t + 6 * NS))
    assert [r.kind for r in out.reports] == ["fill"] and acc.ledger.position("BTC-USD") == 1.0
    assert not acc.oms.open and _counts(acc) == (0, 0, 0, 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_decisions_do_not_depend_on_when_the_reports_arrive(closes, seed):
    """The first run's report stream handed to a fresh account in a random arrival order: each report at any moment
    from the very start (before the order it names exists, as in a recovery) up to the last batch before a decision
    dated after it. The orders, the decisions and the book are the first run's."""
    ups = _updates(closes, seed=seed)
    orders, decisions, reports, acc1, venue, _ = _live(ups)
    assert (
        len(orders) > 100
        and any(r.kind == "partial_fill" for r in reports)
        and any(r.kind == "positions" for r in reports)
    )
    # the latest batch before which each report must have arrived: the first whose progress passes its time
    barrier_after, seen = [], {}
    for u, _ in ups:
        seen[u.symbol] = u.progress
        barrier_after.append(min(seen.values()) if len(seen) == len(SYMS) else -1)
    rng = random.Random(seed)
    deadline = [next((k for k, b in enumerate(barrier_after) if b > r.ts), len(ups)) for r in reports]
    # arrival points non-decreasing in topic order (one partition per account), each no later than its deadline:
    # report j arrives just before update at[j], anywhere from the very start
    ub = deadline[:]
    for j in range(len(ub) - 2, -1, -1):
        ub[j] = min(ub[j], ub[j + 1])
    at, prev = [], 0
    for j in range(len(reports)):
        prev = rng.randint(prev, ub[j]) if rng.random() < 0.05 else min(prev, ub[j])
        at.append(prev)
    acc2 = _account()
    orders2, decisions2 = [], []
    i = 0
    for k, (u, _) in enumerate(ups):
        j = i
        while j < len(reports) and at[j] <= k:
            j += 1
        out = acc2.on_reports(reports[i:j])
        i = j
        out2 = acc2.on_update(u)
        orders2 += out.orders + out2.orders
        decisions2 += out2.decisions
    acc2.on_reports(reports[i:])
    # how many reports reached the account before its event time had reached theirs (ahead of the ticks)
    early = sum(1 for r, a in zip(reports, at, strict=True) if (barrier_after[a - 1] if a > 0 else -1) < r.ts)
    assert early > len(reports) // 4, (early, len(reports))
    assert orders2 == orders
    assert decisions2 == decisions
    assert acc2.ledger.holdings() == pytest.approx(acc1.ledger.holdings())
    assert acc2.ledger.cash == pytest.approx(acc1.ledger.cash, rel=1e-12)
    assert _counts(acc2) == (0, 0, 0, 0), "every report applied once, to an order the book knew"
    assert acc2.ledger.holdings() == pytest.approx({s: venue.position(s) for s in SYMS if venue.position(s)})


@pytest.mark.parametrize("snapshot_at,crash_at", [(230, 262), (301, 360), (401, 406)])
def test_a_recovery_re_creates_the_orders_it_sent_after_its_snapshot(closes, snapshot_at, crash_at):
    """kill -9 at update ``crash_at``; the flow resumes from its snapshot at ``snapshot_at`` and reads every report
    the venue produced since that snapshot before the first replayed tick. The orders it sends again are the same
    orders (the venue executes none twice), every report is applied once to an order the book knows, and the run
    ends where the uninterrupted run ends."""
    ups = _updates(closes)
    ref_orders, _, _, ref, _, _ = _live(ups)
    # the interrupted run, with its own venue (it goes on after the crash)
    acc, venue = _account(), _venue()
    sent, reports, pending = [], [], []
    for k, (u, ticks) in enumerate(ups[:crash_at]):
        pending += venue.on_ticks(ticks)
        out = acc.on_reports(pending)
        reports += pending
        pending = []
        out2 = acc.on_update(u)
        for o in out.orders + out2.orders:
            sent.append(o)
            pending += venue.submit(o)
        if k == snapshot_at:
            state, read, sent_then = pickle.dumps(acc), len(reports), len(sent)
    reports += pending
    assert len(sent) > sent_then, "orders were sent between the snapshot and the crash"
    # recovery: the snapshot, then every report since it at once, then the replayed and the new batches
    acc = pickle.loads(state)
    out = acc.on_reports(reports[read:])
    resent = list(out.orders)
    pending = []
    for k, (u, ticks) in enumerate(ups[snapshot_at + 1 :], start=snapshot_at + 1):
        if k >= crash_at:
            pending += venue.on_ticks(ticks)
        out = acc.on_reports(pending)
        pending = []
        out2 = acc.on_update(u)
        for o in out.orders + out2.orders:
            resent.append(o)
            pending += venue.submit(o)  # the venue ignores an id it has seen
    acc.on_reports(pending)
    by_id = {o.order_id: o for o in sent}
    replayed = [o for o in resent if o.order_id in by_id]
    assert len(replayed) == len(sent) - sent_then, "the replay re-sent every order sent after the snapshot"
    assert all(by_id[o.order_id] == o for o in replayed), "a re-sent order is the same order"
    assert _counts(acc) == (0, 0, 0, 0), "no report of an order the book did not know, none applied twice"
    # the run ends where the uninterrupted one ends
    assert [o.order_id for o in sent] + [o.order_id for o in resent if o.order_id not in by_id] == [
        o.order_id for o in ref_orders
    ]
    assert acc.ledger.holdings() == pytest.approx(ref.ledger.holdings())
    assert acc.ledger.cash == pytest.approx(ref.ledger.cash, rel=1e-12)
    assert acc.ledger.holdings() == pytest.approx({s: venue.position(s) for s in SYMS if venue.position(s)})
    assert set(acc.oms.open) == set(ref.oms.open)  # the same orders working (or waiting for release) at the end


def test_an_order_the_replay_does_not_re_create_is_taken_over_from_its_reports():
    """An order of an earlier run that the book never knew (its replay decided otherwise) is still working at the
    venue: the account takes it over from its ack, so what is in flight and the open orders match the venue's, and
    its fills close it."""
    acc = _account()
    venue = PaperVenue(SYMS, latency_s=0.0, max_participation=0.5, snapshot_every=0)
    t = T0 + 10 * NS
    for s in SYMS:
        acc.on_update(SymbolUpdate(s, None, [], [], t + 5 * NS))
    from schemas.events import Order

    ghost = Order(order_id="ghost", strategy="t", symbol="ETH-USD", side="sell", qty=4.0, type="market", ts=t)
    reps = venue.submit(ghost) + venue.on_ticks([Tk("ETH-USD", t + NS, 2000.0, 4.0)])
    reps.append(venue.snapshot(t + NS))
    out = acc.on_reports(reps)
    assert [r.kind for r in out.reports] == ["ack", "partial_fill", "positions"]
    assert acc.adopted == 1 and acc.execution.in_flight("ETH-USD") == pytest.approx(-2.0)
    assert acc.mismatches == 0 and acc.reconcile_mode == "normal" and not out.alerts
    assert acc.ledger.position("ETH-USD") == pytest.approx(-2.0)
    out = acc.on_reports(venue.on_ticks([Tk("ETH-USD", t + 2 * NS, 2000.0, 4.0)]))
    assert [r.kind for r in out.reports] == ["fill"] and not acc.oms.open
    assert acc.ledger.position("ETH-USD") == pytest.approx(-4.0) == venue.position("ETH-USD")


def test_an_order_id_the_book_already_has_is_not_sent_again():
    """The execution stage does not send (nor track twice) an order whose client id it already has: one taken over
    from the venue's reports before the replayed decision that makes it."""
    from operators.execution.stage import ExecutionStage
    from operators.messages import Emitted
    from schemas.events import Order, PortfolioSnapshot, RiskDecision

    ex = ExecutionStage(None, execution="market")
    oid = stable_id("ord", "t", "BTC-USD", T0, 0.5)
    ex.oms.new(Order(order_id=oid, strategy="t", symbol="BTC-USD", side="buy", qty=2.0, type="market", ts=T0))
    d = RiskDecision(
        id="rd:1",
        intent_id="int-1",
        symbol="BTC-USD",
        ts=T0,
        action="approved",
        requested_qty=2.0,
        approved_qty=2.0,
        side="buy",
        strategy="t",
        portfolio=PortfolioSnapshot(equity=1e5),
    )
    out = Emitted()
    assert ex.submit(d, "t", T0, 0.5, False, T0, out) == [] and out.orders == []
    assert list(ex.oms.open) == [oid] and ex.in_flight("BTC-USD") == 2.0
    ex2 = ExecutionStage(None, execution="market")
    ex2.submit(d, "t", T0, 0.5, False, T0, out)
    assert [o.order_id for o in out.orders] == [oid], "the same decision on a fresh stage sends that very id"


def test_an_order_the_venue_works_with_other_terms_takes_the_venues_terms():
    """A replayed decision that came out otherwise than the first run's makes an order with the same id and another
    quantity; the venue keeps the first one (it ignores an id it has seen): the account takes the venue's terms, so
    what it counts in flight is what the venue works."""
    from schemas.events import Order

    acc = _account()
    venue = PaperVenue(SYMS, latency_s=0.0, max_participation=0.5, snapshot_every=0)
    t = T0 + 10 * NS
    for s in SYMS:
        acc.on_update(SymbolUpdate(s, None, [], [], t + 5 * NS))
    first = Order(order_id="o1", strategy="t", symbol="BTC-USD", side="buy", qty=4.0, type="market", ts=t)
    reps = venue.submit(first)
    acc.oms.new(msgspec_replace(first, qty=3.0))  # the replay's version of o1
    assert venue.submit(msgspec_replace(first, qty=3.0)) == []
    acc.on_reports(reps + venue.on_ticks([Tk("BTC-USD", t + NS, 100.0, 4.0)]))
    assert acc.oms.open["o1"].order.qty == 4.0 and acc.execution.in_flight("BTC-USD") == pytest.approx(2.0)
    assert acc.adopted == 1
    acc.on_reports(venue.on_ticks([Tk("BTC-USD", t + 2 * NS, 100.0, 4.0)]))
    assert not acc.oms.open and acc.ledger.position("BTC-USD") == pytest.approx(4.0) == venue.position("BTC-USD")
    assert acc.oms.ignored == 0


def msgspec_replace(o, **kw):
    import msgspec

    return msgspec.structs.replace(o, **kw)


def test_a_child_the_book_withdrew_but_the_venue_works_is_taken_over_and_cancelled():
    """A replay withdrew a child (a halt came at another moment than in the run before the crash) that the first run
    had sent: the venue's ack re-opens it in the book, in flight, with a cancel request, and the cancel closes it."""
    from schemas.events import Order

    acc = _account()
    t = T0 + 10 * NS
    for s in SYMS:
        acc.on_update(SymbolUpdate(s, None, [], [], t + 5 * NS))
    child = Order(
        order_id="c1", parent_id="p1", strategy="t", symbol="BTC-USD", side="buy", qty=2.0, type="market", ts=t
    )
    acc.oms.new(child)
    acc.oms.open["c1"].sent = False
    acc.oms.withdraw("c1", "withdrawn_operator_halt")
    venue = PaperVenue(SYMS, latency_s=3600.0, snapshot_every=0)
    reps = venue.submit(child) + [venue.snapshot(t + NS)]
    out = acc.on_reports(reps)
    assert acc.adopted == 1 and acc.oms.open["c1"].cancel_requested and acc.mismatches == 0
    assert [(c.client_order_id, c.reason) for c in out.cancels] == [("c1", "withdrawn_operator_halt")]
    assert acc.execution.in_flight("BTC-USD") == 2.0
    acc.on_reports(venue.on_cancel_request(out.cancels[0]))
    assert not acc.oms.open and acc.execution.in_flight("BTC-USD") == 0.0 and acc.oms.ignored == 0


def test_remote_orders_do_not_depend_on_how_the_ticks_were_batched(closes):
    """The same history in per-bar batches and in batches of one to six bars: the same orders in the same order and
    the same decisions (a child due before a decision leaves before it, whichever batch holds both)."""
    ups = _updates(closes, n_bars=300)
    one = _account()
    orders1, dec1 = [], []
    for u, _ in ups:
        o = one.on_update(u)
        orders1 += o.orders
        dec1 += o.decisions
    rng = random.Random(5)
    merged, i = [], 0
    by_sym = {s: [u for u, _ in ups if u.symbol == s] for s in SYMS}
    n = len(by_sym[SYMS[0]])
    while i < n:
        k = rng.randint(1, 6)
        for s in SYMS:
            part = by_sym[s][i : i + k]
            ticks = [
                t
                for u in part
                for t in zip(u.ticks.ts.tolist(), u.ticks.price.tolist(), u.ticks.qty.tolist(), strict=True)
            ]
            rows = [Tk(s, a, b, c) for a, b, c in ticks]
            merged.append(
                SymbolUpdate(
                    s,
                    part[0].floor,
                    TickColumns(s, rows, part[0].floor),
                    [p for u in part for p in u.points],
                    part[-1].progress,
                )
            )
        i += k
    two = _account()
    orders2, dec2 = [], []
    for u in merged:
        o = two.on_update(u)
        orders2 += o.orders
        dec2 += o.decisions
    assert len(orders1) > 100 and len(merged) < len(ups) / 2
    assert orders2 == orders1
    assert dec2 == dec1
