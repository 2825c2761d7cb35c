"""The decision path's configuration, and :class:`LocalPipeline`: the signal and account stages composed in
process, without Bytewax (tests, notebooks, the memory benchmark).

The stages themselves live in :mod:`operators.signal_stage` (keyed by symbol: bars, features, scores, strategies,
intents) and :mod:`operators.account.stage` (keyed by account: the book, the risk gate across symbols, execution
through a venue); :mod:`operators.messages` holds what travels between them. The flow
(:mod:`flows.trading`) wires the same stages into Bytewax.

Two modes, chosen by :class:`PipelineConfig`:

* ``mode="full"`` (the default): five strategies (EMA trend, ML score, z-score reversion, volatility breakout,
  Telegram-signal follower) under an :class:`~operators.orchestrator.Orchestrator` (risk parity), the
  :class:`~operators.risk.RiskGate` (portfolio VaR/CVaR across the account's symbols, exposure, leverage, kill
  switch, stale data, confidence, rate limit) on every intent, TWAP slicing of approved parents, and the
  simulated venue (spread, square-root impact, fees);
* ``mode="baseline"``: one EMA trend strategy, fixed-fraction sizing with a position cap and market orders — the
  simple path the vectorised sweep reproduces exactly (``tests/unit/operators/sweep/test_sweep.py``, with one account per symbol).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from operators.account.stage import AccountConfig, AccountStage
from operators.bars import BarRecord
from operators.execution.broker import BrokerConfig
from operators.messages import Emitted
from operators.models.scorer import ScorerConfig
from operators.risk import RiskLimits
from operators.signal_stage import SignalStage
from schemas.events import Bar, Signal

__all__ = ["PipelineConfig", "LocalPipeline", "Emitted", "bar_event", "paper_broker_config"]


@dataclass(frozen=True)
class PipelineConfig:
    """Knobs of the decision path (both stages).

    ``base_resolution_s``: base bar length (s); ``bar_resolutions_s``: coarser bars derived (s);
    ``decision_resolution_s``: bars that drive features and the strategy (s; the base or a derived one);
    ``allowed_lateness_s``: s; ``late_policy``: "drop" or "correct" (see ``operators.bars``);
    ``max_future_skew_s``: a tick further than this ahead of its partition's watermark is dead-lettered as
    ``future_skew`` (s); ``dedupe_window_s``/``dedupe_max_ids``: a trade id seen again within this much event
    time (s) behind the watermark, among the last ``dedupe_max_ids`` of the partition, is dead-lettered as
    ``duplicate_tick``;
    ``symbols``: the universe (every symbol the flow trades; ticks of others are dead-lettered as
    ``unknown_symbol``); ``accounts``: ``"one"`` (every symbol in the account ``account``) or ``"per_symbol"``
    (an account per symbol, named after it: the baseline's sweep comparison); ``capital``: quote currency
    per account; ``fraction``: position notional at full conviction, fraction of the account's equity times
    the symbol's weight (equal weights); ``max_position_frac``: baseline cap on position notional, fraction
    of equity; ``min_notional``: smallest order, quote currency; ``trend_entry``/``trend_exit``: EMA spread
    thresholds (fraction of price); ``broker``: costs of the in-process venue (``paper_broker_config`` gives
    the baseline's fixed slippage and fee); ``orchestrator_args``: ``(name, value)`` pairs passed to the full
    mode's :class:`~operators.orchestrator.Orchestrator` (e.g. ``(("turnover_per_year", None),)``).
    """

    base_resolution_s: int = 1
    bar_resolutions_s: tuple[int, ...] = (60, 300)
    decision_resolution_s: int = 60
    allowed_lateness_s: float = 0.0
    late_policy: str = "drop"
    max_future_skew_s: float = 86_400.0
    dedupe_window_s: float = 3_600.0
    dedupe_max_ids: int = 100_000
    capital: float = 100_000.0
    fraction: float = 0.5
    max_position_frac: float = 1.0
    min_notional: float = 10.0
    trend_entry: float = 0.004
    trend_exit: float = 0.001
    allow_short: bool = True
    symbols: tuple[str, ...] = ("BTC-USD", "ETH-USD")
    accounts: str = "one"
    account: str = "default"
    models: bool = True
    scorer: ScorerConfig = field(default_factory=lambda: ScorerConfig(pickle_model=False))
    mode: str = "full"
    allocation: str = "risk_parity"
    orchestrator_args: tuple[tuple[str, Any], ...] = ()
    limits: RiskLimits = field(default_factory=RiskLimits)
    risk_window: int = 500
    execution: str = "twap"
    twap_horizon_s: float = 30.0
    twap_slice_s: float = 10.0
    broker: BrokerConfig = field(default_factory=BrokerConfig)

    def __post_init__(self) -> None:
        if self.accounts not in ("one", "per_symbol"):
            raise ValueError(f"accounts must be 'one' or 'per_symbol', got {self.accounts!r}")
        if not self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols must be a non-empty tuple of distinct symbols")
        if self.mode not in ("full", "baseline"):
            raise ValueError(f"mode must be 'full' or 'baseline', got {self.mode!r}")
        if self.execution not in ("twap", "market"):
            raise ValueError(f"execution must be 'twap' or 'market', got {self.execution!r}")
        if self.decision_resolution_s not in (self.base_resolution_s, *self.bar_resolutions_s):
            raise ValueError("decision_resolution_s must be the base resolution or one of bar_resolutions_s")
        for r in self.bar_resolutions_s:
            if r % self.base_resolution_s:
                raise ValueError(f"bar resolution {r}s is not a multiple of the base {self.base_resolution_s}s")

    def account_of(self, symbol: str) -> str:
        """The account that trades ``symbol``."""
        return symbol if self.accounts == "per_symbol" else self.account

    def account_names(self) -> list[str]:
        """Every account of the configuration."""
        return list(self.symbols) if self.accounts == "per_symbol" else [self.account]

    def account_config(self, name: str) -> AccountConfig:
        """The :class:`~operators.account.stage.AccountConfig` of account ``name``."""
        syms = (name,) if self.accounts == "per_symbol" else self.symbols
        full = self.mode == "full"
        return AccountConfig(
            name=name,
            symbols=syms,
            capital=self.capital,
            fraction=self.fraction,
            gate="risk" if full else "position_cap",
            limits=self.limits,
            max_position_frac=self.max_position_frac,
            min_notional=self.min_notional,
            risk_window=self.risk_window,
            execution=self.execution if full else "market",
            twap_horizon_s=self.twap_horizon_s,
            twap_slice_s=self.twap_slice_s,
            broker=self.broker,
        )


def paper_broker_config(latency_s: float = 0.05, slippage_bps: float = 1.0, fee_bps: float = 7.5) -> BrokerConfig:
    """Venue costs of the baseline: fixed ``slippage_bps`` against every market order (bps of price), no impact,
    ``fee_bps`` of notional, ``latency_s`` seconds from order to the first tick that can fill it."""
    return BrokerConfig(
        latency_s=latency_s,
        half_spread_bps=slippage_bps,
        impact_k_bps=0.0,
        max_impact_bps=0.0,
        taker_fee_bps=fee_bps,
        maker_fee_bps=fee_bps,
    )


def bar_event(b: BarRecord) -> Bar:
    """The wire/storage ``Bar`` of a bar record (built only where a sink needs it: it validates)."""
    return Bar(
        symbol=b.symbol,
        ts=b.ts,
        resolution_s=b.resolution_s,
        open=b.open,
        high=b.high,
        low=b.low,
        close=b.close,
        volume=b.volume,
        buy_volume=b.buy_volume,
        sell_volume=b.sell_volume,
        vwap=b.vwap,
        trade_count=b.trade_count,
        synthetic=b.synthetic,
    )


class LocalPipeline:
    """The signal stages of ``cfg.symbols`` and their accounts, composed in process; picklable.

    :meth:`on_batch` takes one symbol's ticks (stream order) and an optional watermark (ns), exactly as the flow's
    ``signals`` step does, and returns both stages' outputs. Call :meth:`flush` at the end of a finite input.
    """

    def __init__(self, cfg: PipelineConfig = PipelineConfig(), venues: Mapping[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.signals: dict[str, SignalStage] = {}
        self.accounts = {a: AccountStage(cfg.account_config(a), (venues or {}).get(a)) for a in cfg.account_names()}

    def signal_stage(self, symbol: str) -> SignalStage:
        st = self.signals.get(symbol)
        if st is None:
            st = self.signals[symbol] = SignalStage(symbol, self.cfg)
        return st

    def account(self, symbol: str | None = None) -> AccountStage:
        """The account of ``symbol`` (the only account when omitted)."""
        if symbol is None:
            (acc,) = self.accounts.values()
            return acc
        return self.accounts[self.cfg.account_of(symbol)]

    def on_signals(self, signals: Sequence[Signal]) -> None:
        for s in signals:
            self.signal_stage(s.symbol).on_signals([s])

    def on_batch(self, symbol: str, ticks: Sequence[Any], watermark_ns: int | None = None) -> Emitted:
        out = self.signal_stage(symbol).on_batch(ticks, watermark_ns)
        assert out.update is not None
        out.extend(self.account(symbol).on_update(out.update))
        return out

    def flush(self) -> Emitted:
        out = Emitted()
        for acc in self.accounts.values():
            out.extend(acc.flush())
        return out
