"""Peer side of the event-driven backtest, run inside the nautilus-trader venv (no project imports).

The EMA-spread trend rule as a NautilusTrader ``Strategy`` on 30-minute bars, one simulated venue and account per
instrument (100,000 USD each, netting, margin, leverage 1: the project's one account per symbol), market orders:

* the rule: EMA12 and EMA26 of the bar closes, each seeded by the simple mean (``math.fsum``) of its first closes,
  ``spread = (EMA12 - EMA26) / close`` from the 26th bar on; long above ``entry``, short below ``-entry``, flat
  inside ``+-exit``, else hold;
* the size: target = position x ``fraction`` x equity at the close / close, capped at ``max_position_frac`` x
  equity / close, the order being target minus the quantity held, none below ``min_notional`` (quote); equity is
  the strategy's own ledger of Nautilus's fills (cash + quantity x close);
* costs: the instrument's taker fee (7.5 bp); Nautilus's default fill model (no slippage).

``--mode ticks``: the project's synthetic trade ticks, bars built by Nautilus's own time-bar aggregation
(``-30-MINUTE-LAST-INTERNAL``, intervals [open, close) as the project's). ``--mode bars``: the bundled bars as
external bars (``bar_execution``). No latency model: a market order decided at a bar's close fills at once at the
last price the venue knows, the close of that bar (the project's broker fills at the next bar's open tick).

Prints one JSON line: seconds of ``BacktestEngine.run`` (data loading and engine set-up not timed), and per
instrument the bars seen, fills, fees and final equity (the ledger and Nautilus's own account).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from decimal import Decimal

import numpy as np
import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.config import BacktestEngineConfig, DataEngineConfig, LoggingConfig, StrategyConfig
from nautilus_trader.model.currencies import BTC, ETH, USD
from nautilus_trader.model.data import BarType, TradeTick
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import CurrencyPair
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.persistence.wranglers import BarDataWrangler
from nautilus_trader.trading.strategy import Strategy

PRICE_PREC = 8
SIZE_PREC = 8


class EmaSpreadConfig(StrategyConfig, frozen=True):
    instrument_id: str
    bar_type: str
    entry: float
    exit: float
    capital: float
    fraction: float
    max_position_frac: float
    min_notional: float
    fast: int = 12
    slow: int = 26
    warm: int = 25


class EmaSpread(Strategy):
    def __init__(self, config: EmaSpreadConfig) -> None:
        super().__init__(config)
        c = config
        self.iid = InstrumentId.from_str(c.instrument_id)
        self.af, self.as_ = 2.0 / (c.fast + 1), 2.0 / (c.slow + 1)
        self.head: list[float] = []
        self.ef = self.es = 0.0
        self.n = 0
        self.target = 0.0
        self.cash, self.q = c.capital, 0.0
        self.orders, self.fills, self.fees, self.last = 0, 0, 0.0, float("nan")
        self.fill_log: list = []

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.iid)
        self.subscribe_bars(BarType.from_str(self.config.bar_type))

    def on_bar(self, bar) -> None:
        c = self.config
        px = bar.close.as_double()
        self.last = px
        i = self.n
        self.n += 1
        if i < c.slow:
            self.head.append(px)
        if i == c.fast - 1:
            self.ef = math.fsum(self.head[: c.fast]) / c.fast
        elif i >= c.fast:
            self.ef = self.af * px + (1.0 - self.af) * self.ef
        if i == c.slow - 1:
            self.es = math.fsum(self.head) / c.slow
        elif i >= c.slow:
            self.es = self.as_ * px + (1.0 - self.as_) * self.es
        if i < c.warm:
            return
        spread = (self.ef - self.es) / px
        want = self.target
        if spread > c.entry:
            want = 1.0
        elif spread < -c.entry:
            want = -1.0
        elif abs(spread) < c.exit:
            want = 0.0
        if want == self.target:
            return
        self.target = want
        eq = max(self.cash + self.q * px, 0.0)
        goal = want * c.fraction * eq / px
        cap = c.max_position_frac * eq / px
        if abs(goal) > cap:
            goal = math.copysign(cap, goal)
        delta = goal - self.q
        if abs(delta) * px < c.min_notional:
            return
        qty = self.instrument.make_qty(abs(delta))
        if qty.as_double() <= 0:
            return
        side = OrderSide.BUY if delta > 0 else OrderSide.SELL
        self.orders += 1
        self.submit_order(self.order_factory.market(self.iid, side, qty))

    def on_order_filled(self, e) -> None:
        px, qty, fee = e.last_px.as_double(), e.last_qty.as_double(), e.commission.as_double()
        signed = qty if e.order_side == OrderSide.BUY else -qty
        self.cash -= signed * px + fee
        self.q += signed
        if abs(self.q) < 1e-12:
            self.q = 0.0
        self.fills += 1
        self.fees += fee
        self.fill_log.append((int(e.ts_event), signed, px))


def instrument(k: int, base: str, venue: Venue, fee: Decimal) -> CurrencyPair:
    cur = {"BTC": BTC, "ETH": ETH}[base]
    return CurrencyPair(
        instrument_id=InstrumentId(Symbol(f"{base}USD"), venue),
        raw_symbol=Symbol(f"{base}USD"),
        base_currency=cur,
        quote_currency=USD,
        price_precision=PRICE_PREC,
        size_precision=SIZE_PREC,
        price_increment=Price(10.0**-PRICE_PREC, PRICE_PREC),
        size_increment=Quantity(10.0**-SIZE_PREC, SIZE_PREC),
        ts_event=0,
        ts_init=0,
        margin_init=Decimal(0),
        margin_maint=Decimal(0),
        maker_fee=fee,
        taker_fee=fee,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("--mode", choices=["ticks", "bars"], required=True)
    ap.add_argument("--symbols", type=int, required=True)
    ap.add_argument("--fills-out", default="")
    a = ap.parse_args()
    z = np.load(a.input, allow_pickle=False)
    p = {
        k: float(v)
        for k, v in zip(
            ["entry", "exit", "capital", "fraction", "max_frac", "min_notional", "fee_bps"], z["params"], strict=True
        )
    }
    engine = BacktestEngine(
        config=BacktestEngineConfig(
            trader_id="PEER-001",
            logging=LoggingConfig(log_level="ERROR", bypass_logging=True),
            data_engine=DataEngineConfig(
                time_bars_interval_type="right-open",
                time_bars_timestamp_on_close=True,
                time_bars_build_with_no_updates=False,
            ),
        )
    )
    strategies = []
    names = [str(x) for x in z["names"]][: a.symbols]
    for k, name in enumerate(names):
        venue = Venue(f"SIM{k}")
        engine.add_venue(
            venue=venue,
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            base_currency=USD,
            starting_balances=[Money(p["capital"], USD)],
            default_leverage=Decimal(1),
        )
        inst = instrument(k, name.split("-")[0], venue, Decimal(str(p["fee_bps"] / 1e4)))
        engine.add_instrument(inst)
        iid = str(inst.id)
        if a.mode == "ticks":
            bar_type = f"{iid}-30-MINUTE-LAST-INTERNAL"
            ts = z[f"tick_ts{k}"].astype(np.uint64)
            ticks = TradeTick.from_raw_arrays_to_list(
                inst.id,
                PRICE_PREC,
                SIZE_PREC,
                np.round(z[f"tick_px{k}"], PRICE_PREC),
                np.round(z[f"tick_qty{k}"], SIZE_PREC),
                z[f"tick_side{k}"].astype(np.uint8),
                [str(i) for i in range(ts.size)],
                ts,
                ts,
            )
            engine.add_data(ticks)
        else:
            bar_type = f"{iid}-30-MINUTE-LAST-EXTERNAL"
            close_ts = pd.to_datetime(z[f"bar_ts{k}"] + 1800 * 10**9, utc=True)
            frame = pd.DataFrame(
                {c: np.round(z[f"bar_{c}{k}"], PRICE_PREC) for c in ("open", "high", "low", "close")}, index=close_ts
            )
            frame["volume"] = np.round(z[f"bar_volume{k}"], SIZE_PREC)
            frame.index.name = "timestamp"
            engine.add_data(BarDataWrangler(BarType.from_str(bar_type), inst).process(frame))
        s = EmaSpread(
            EmaSpreadConfig(
                instrument_id=iid,
                bar_type=bar_type,
                entry=p["entry"],
                exit=p["exit"],
                capital=p["capital"],
                fraction=p["fraction"],
                max_position_frac=p["max_frac"],
                min_notional=p["min_notional"],
                strategy_id=f"EMA-{k:03d}",
            )
        )
        engine.add_strategy(s)
        strategies.append((name, venue, inst, s))
    t0 = time.perf_counter()
    engine.run()
    secs = time.perf_counter() - t0
    out = {"seconds": secs, "symbols": {}}
    fills = {}
    for name, venue, inst, s in strategies:
        acct = engine.portfolio.account(venue)
        try:
            upnl = engine.portfolio.unrealized_pnl(inst.id)
            acct_eq = acct.balance_total(USD).as_double() + (upnl.as_double() if upnl is not None else 0.0)
        except Exception:  # the ledger figure stands on its own
            acct_eq = float("nan")
        out["symbols"][name] = {
            "bars": s.n,
            "orders": s.orders,
            "fills": s.fills,
            "fees": s.fees,
            "final_equity": s.cash + s.q * s.last,
            "account_equity": acct_eq,
        }
        fills[name] = s.fill_log
    if a.fills_out:
        with open(a.fills_out, "w") as f:
            json.dump(fills, f)
    engine.dispose()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
