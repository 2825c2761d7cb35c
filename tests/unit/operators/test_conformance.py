"""Conformance: what every strategy, every venue and every VaR/CVaR estimator must do, checked on every one of them.

The lists are discovered, never written by hand: the strategies by walking the ``operators.strategies`` package
(and the orchestrator, which is one), the venues by walking ``operators.execution`` for classes with the
``Venue`` methods, the streaming estimators by walking ``operators.risk`` for classes with ``update``/``var``/
``cvar``, and the batch estimators from ``operators.risk.backtest.METHODS``. A new one is checked without
touching this file (and one that cannot be built from its defaults fails :func:`test_every_discovered_class_builds`
until it gets an entry in ``BUILD``).

The four properties, on the bundled BTC and ETH 30-minute history (``data/market/``):

* **pickle round trip**: the flow snapshots state with pickle; a restored copy continues exactly as the
  original;
* **identical output across batch cuts**: where the input is cut into batches (and the state snapshotted and
  restored at each cut) changes nothing in the output;
* **nothing before warm-up**: no target while the features and scores are not warm; no report before the first
  order and no fill before its order; no VaR before a return and no forecast without a full window;
* **bounded state**: the pickled state does not grow with the length of the input stream.

Each check is a plain function that raises ``AssertionError``; ``test_each_check_can_fail`` hands each one a
class broken in exactly that way.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pickle
import pkgutil
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pytest

import operators.execution
import operators.risk
import operators.strategies
from connectors.files import read_bars
from connectors.history import load_history
from operators.features import CORE_V1, compute_features_array
from operators.risk.backtest import METHODS, rolling_forecasts
from operators.strategies import StrategyTarget
from schemas.events import Order, Signal, Tick
from tests.support import REPO

FILES: list[str | Path] = [REPO / "data" / "market" / "BTC-30m.csv.gz", REPO / "data" / "market" / "ETH-30m.csv.gz"]
N_BARS = 2400  # per symbol: 50 days of 30-minute bars
CUTS = ((), (1,), (7, 500, 1501), (3, 4, 5, 999, 2000, 3333))  # positions in the input where a batch ends


# ------------------------------------------------------------------------------------------------- discovery


def _classes_of(package: Any, wanted: Callable[[type], bool]) -> dict[str, type]:
    """Classes defined in ``package`` or any module under it that pass ``wanted``, by qualified name."""
    mods = [package] + [
        importlib.import_module(m.name) for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    ]
    out: dict[str, type] = {}
    for mod in mods:
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ == mod.__name__ and not getattr(cls, "_is_protocol", False) and wanted(cls):
                out[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return out


def _has(*methods: str) -> Callable[[type], bool]:
    return lambda cls: all(callable(getattr(cls, m, None)) for m in methods)


def discover_strategies() -> dict[str, type]:
    """Every strategy: a class with ``on_bar`` in ``operators.strategies``, and the orchestrator."""
    found = _classes_of(operators.strategies, lambda c: _has("on_bar")(c) and _public(c))
    from operators.orchestrator import Orchestrator

    found[f"{Orchestrator.__module__}.{Orchestrator.__qualname__}"] = Orchestrator
    return found


def _answers_with_reports(cls: type) -> bool:
    # a venue answers only with execution reports (a broker, with the same method names, returns fills)
    return "ExecutionReport" in str(getattr(cls.submit, "__annotations__", {}).get("return", ""))


def discover_venues() -> dict[str, type]:
    """Every venue: a class with the methods of ``operators.execution.venue.Venue`` that answers with reports."""
    return _classes_of(
        operators.execution, lambda c: _has("submit", "cancel", "on_ticks", "snapshot")(c) and _answers_with_reports(c)
    )


def _public(cls: type) -> bool:
    return not any(part.startswith("_") for part in cls.__module__.split(".") + [cls.__name__])


def discover_estimators() -> dict[str, type]:
    """Every streaming VaR/CVaR estimator: a public class of a public module with ``update``, ``var`` and ``cvar``."""
    return _classes_of(operators.risk, lambda c: _has("update", "var", "cvar")(c) and _public(c))


def _default_portfolio() -> Any:
    from operators.orchestrator import default_portfolio
    from operators.pipeline import PipelineConfig

    return default_portfolio(PipelineConfig())


def _wrapped_trend() -> Any:
    from operators.strategies import EmaSpreadTrend
    from operators.strategies.discipline import TradeDiscipline

    return TradeDiscipline(EmaSpreadTrend(), min_hold_bars=4, turnover_per_year=200.0)


#: how to build a discovered class that has no usable defaults (class name -> factory)
BUILD: dict[str, Callable[[], Any]] = {
    "Orchestrator": _default_portfolio,
    "TradeDiscipline": _wrapped_trend,
    "PaperVenue": lambda: _paper_venue(),  # noqa: PLW0108 - defined further down
    "SimVenue": lambda: _sim_venue(),  # noqa: PLW0108 - defined further down
    "RollingHistorical": lambda: _rolling("RollingHistorical"),
    "RollingGaussian": lambda: _rolling("RollingGaussian"),
    "RollingCornishFisher": lambda: _rolling("RollingCornishFisher"),
}


def build(cls: type) -> Any:
    f = BUILD.get(cls.__name__)
    return f() if f is not None else cls()


def _paper_venue() -> Any:
    from operators.execution.paper_venue import PaperVenue

    return PaperVenue(("BTC-USD", "ETH-USD"), cash=1_000_000.0, latency_s=0.0, snapshot_every=500)


def _sim_venue() -> Any:
    from operators.execution.venue import SimVenue

    return SimVenue(1_000_000.0)


def _rolling(name: str) -> Any:
    return getattr(operators.risk, name)(window=250)


STRATEGIES = discover_strategies()
VENUES = discover_venues()
ESTIMATORS = discover_estimators()


def test_discovery_finds_every_exported_strategy_venue_and_estimator() -> None:
    """What the walk finds is what the packages export: a strategy added to the package (and exported) is checked
    here without an edit to this file, and nothing exported escapes the checks."""
    exported = {
        f"{c.__module__}.{c.__qualname__}"
        for n in operators.strategies.__all__
        if inspect.isclass(c := getattr(operators.strategies, n)) and _has("on_bar")(c)
        if not getattr(c, "_is_protocol", False)
    }
    assert {k for k in STRATEGIES if k.startswith("operators.strategies.")} == exported
    assert {"EmaSpreadTrend", "MLScoreThreshold", "ZScoreReversion", "VolatilityBreakout", "SignalFollower"} <= {
        c.__name__ for c in STRATEGIES.values()
    }
    exported_venues = {
        c
        for n in operators.execution.__all__
        if inspect.isclass(c := getattr(operators.execution, n, None)) and _has("submit", "on_ticks")(c)
        if not getattr(c, "_is_protocol", False) and _answers_with_reports(c)
    }
    assert exported_venues <= set(VENUES.values())
    assert {c.__name__ for c in VENUES.values()} >= {"SimVenue", "PaperVenue"}
    risk_exported = {c for n in operators.risk.__all__ if inspect.isclass(c := getattr(operators.risk, n))}
    assert set(ESTIMATORS.values()) <= risk_exported
    assert {c.__name__ for c in ESTIMATORS.values()} >= {
        "RollingHistorical",
        "RollingGaussian",
        "RollingCornishFisher",
        "EwmaEstimator",
    }
    assert {"historical", "gaussian", "cornish_fisher", "ewma", "fhs"} <= set(METHODS)


@pytest.mark.parametrize("name", sorted({**STRATEGIES, **VENUES, **ESTIMATORS}))
def test_every_discovered_class_builds(name: Any) -> None:
    cls = {**STRATEGIES, **VENUES, **ESTIMATORS}[name]
    assert isinstance(build(cls), cls)


# ------------------------------------------------------------------------------------------------ real data


@lru_cache(maxsize=1)
def strategy_inputs() -> tuple[tuple[Any, ...], ...]:
    """One ``on_bar``/``on_signal`` call per element, both symbols interleaved in event time: ``("bar", symbol, ts,
    close, features or None, score or None, bar)`` or ``("signal", Signal)``. Features are ``core@1`` of the real
    bars (None until warm); the score is a deterministic squashing of the real EMA spread (None until warm);
    signals are ideas placed every 200 bars at the real close (entry there, targets 1 and 2 % away, stop 1 %)."""
    rows: list[tuple[int, str, int, tuple[Any, ...]]] = []
    spread_at = CORE_V1.features.index("ema_spread")

    class _Bar:
        __slots__ = ("open", "high", "low", "close", "volume")

        def __init__(self, o: float, h: float, lo: float, c: float, v: float) -> None:
            self.open, self.high, self.low, self.close, self.volume = o, h, lo, c, v

    for f in FILES:
        df = read_bars(f).frame.head(N_BARS)
        sym = str(df["symbol"].iloc[0])
        cols = {k: df[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume")}
        cols.update(
            buy_volume=0 * cols["volume"],
            sell_volume=0 * cols["volume"],
            vwap=cols["close"],
            trade_count=8 + 0 * cols["volume"],
        )
        feats = compute_features_array(cols, CORE_V1.with_resolution(1800))
        mark = df["ts"].to_numpy(dtype=np.int64) + 1800 * 10**9
        for i in range(len(df)):
            fv = None if np.isnan(feats[i]).any() else feats[i].tolist()
            score = None if fv is None else 0.5 + 0.5 * math.tanh(200.0 * fv[spread_at])
            c = float(cols["close"][i])
            bar = _Bar(
                float(cols["open"][i]), float(cols["high"][i]), float(cols["low"][i]), c, float(cols["volume"][i])
            )
            rows.append((int(mark[i]), sym, 1, ("bar", sym, int(mark[i]), c, fv, score, bar)))
            if i % 200 == 150:
                side: Literal["long", "short"] = "long" if (i // 200) % 2 == 0 else "short"
                d = 1.0 if side == "long" else -1.0
                sig = Signal(
                    id=f"sig-{sym}-{i}",
                    source_chat="@bundled",
                    source_message_id=i,
                    symbol=sym,
                    side=side,
                    entries=[c],
                    targets=[c * (1 + 0.01 * d), c * (1 + 0.02 * d)],
                    stop=c * (1 - 0.01 * d),
                    trust=0.8,
                    ts=int(mark[i]) - 1,
                )
                rows.append((int(mark[i]) - 1, sym, 0, ("signal", sig)))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return tuple(r[3] for r in rows)


def _outputs(strategy: Any, inputs: tuple[Any, ...], cuts: tuple[int, ...] = ()) -> tuple[list[Any], Any]:
    """Run ``strategy`` over ``inputs``; at each cut position the state goes through pickle (a batch boundary with
    a snapshot). Returns every call's output (None or the target's fields) and the final strategy."""
    out: list[Any] = []
    cut = set(cuts)
    for i, x in enumerate(inputs):
        if i in cut:
            strategy = pickle.loads(pickle.dumps(strategy))
        if x[0] == "bar":
            _, sym, ts, close, fv, score, bar = x
            r = strategy.on_bar(sym, ts, close, fv, score=score, bar=bar)
        else:
            r = strategy.on_signal(x[1]) if hasattr(strategy, "on_signal") else None
        out.append(None if r is None else (r.strategy, r.symbol, r.ts, r.target, r.confidence, r.reason))
    return out, strategy


# ----------------------------------------------------------------------------------------- strategy checks


def check_strategy_pickle(factory: Callable[[], Any], inputs: tuple[Any, ...]) -> None:
    s = factory()
    half = len(inputs) // 2
    _, s = _outputs(s, inputs[:half])
    try:
        copy = pickle.loads(pickle.dumps(s))
    except Exception as e:  # any failure to pickle is the finding
        raise AssertionError(f"state does not pickle: {e!r}") from e
    a, _ = _outputs(s, inputs[half:])
    b, _ = _outputs(copy, inputs[half:])
    assert a == b, "a restored copy does not continue as the original"


def check_strategy_cuts(factory: Callable[[], Any], inputs: tuple[Any, ...]) -> None:
    whole, _ = _outputs(factory(), inputs)
    assert any(o is not None for o in whole), "no target at all on the real history: the check would prove nothing"
    for cuts in CUTS[1:]:
        got, _ = _outputs(factory(), inputs, cuts)
        first = next((i for i, (x, y) in enumerate(zip(whole, got, strict=True)) if x != y), None)
        assert got == whole, f"cut at {cuts}: output differs from call {first} on"


def check_strategy_warmup(factory: Callable[[], Any], inputs: tuple[Any, ...]) -> None:
    cold = [x for x in inputs if x[0] == "bar" and x[4] is None and x[5] is None]
    assert cold, "the real history has no bar before the features are warm"
    out, _ = _outputs(factory(), tuple(cold))
    early = [i for i, o in enumerate(out) if o is not None]
    assert early == [], f"targets before warm-up, at calls {early[:5]}"


def check_strategy_bounded(factory: Callable[[], Any], inputs: tuple[Any, ...]) -> None:
    q = len(inputs) // 4
    _, s = _outputs(factory(), inputs[:q])
    small = len(pickle.dumps(s))
    _, s = _outputs(s, inputs[q:])
    large = len(pickle.dumps(s))
    assert large <= 1.1 * small + 512, f"state grows with the stream: {small} bytes after {q} calls, {large} after all"


STRATEGY_CHECKS = {
    "pickle": check_strategy_pickle,
    "cuts": check_strategy_cuts,
    "warmup": check_strategy_warmup,
    "bounded": check_strategy_bounded,
}


@pytest.mark.parametrize("check", sorted(STRATEGY_CHECKS))
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategy_conforms(name: Any, check: Any) -> None:
    STRATEGY_CHECKS[check](lambda: build(STRATEGIES[name]), strategy_inputs())


# -------------------------------------------------------------------------------------------- venue checks


@lru_cache(maxsize=1)
def venue_inputs() -> tuple[tuple[Any, ...], ...]:
    """``("order", Order)`` and ``("tick", Tick)`` in event time: synthetic ticks of the real bars (8 a bar) of both
    symbols, and a market order every 150 ticks, alternating buys and sells of about 20,000 quote of the symbol;
    every tenth order a limit 0.5 % away from the last price and a cancel of it 40 ticks later."""
    h = load_history(FILES, ticks_per_bar=8, max_bars=600).ticks
    sym, ts, px, qty, side = (h[c].to_numpy() for c in ("symbol", "ts", "price", "qty", "side"))
    out: list[tuple[Any, ...]] = []
    last: dict[str, float] = {}
    cancels: dict[int, str] = {}
    n = 0
    for i in range(len(h)):
        s, t, p = str(sym[i]), int(ts[i]), float(px[i])
        if i in cancels:
            out.append(("cancel", cancels.pop(i), t))
        if i % 150 == 149 and s in last:
            n += 1
            buy = n % 2 == 1
            q = round(20_000.0 / last[s], 6)
            if n % 10 == 0:
                lim = last[s] * (0.995 if buy else 1.005)
                o = Order(
                    order_id=f"o{n}", strategy="c", symbol=s, side="buy" if buy else "sell", qty=q, type="limit",
                    limit_price=lim, ts=t,
                )  # fmt: skip
                cancels[i + 40] = o.order_id
            else:
                o = Order(
                    order_id=f"o{n}", strategy="c", symbol=s, side="buy" if buy else "sell", qty=q, type="market", ts=t
                )
            out.append(("order", o))
        tk = Tick(
            symbol=s,
            ts=t,
            price=p,
            qty=float(qty[i]),
            side=cast(Any, str(side[i])),
            trade_id=f"t{i}",
            venue="synthetic",
        )
        out.append(("tick", tk))
        last[s] = p
    return tuple(out)


def _reports(venue: Any, inputs: tuple[Any, ...], cuts: tuple[int, ...] = ()) -> tuple[list[Any], Any]:
    """Feed ``inputs``: consecutive ticks go to ``on_ticks`` together until an order, a cancel or a cut; at a cut
    the venue goes through pickle. Returns every report and the final venue."""
    out: list[Any] = []
    buf: list[Any] = []
    cut = set(cuts)

    def flush() -> None:
        if buf:
            out.extend(venue.on_ticks(list(buf)))
            buf.clear()

    for i, x in enumerate(inputs):
        if i in cut:
            flush()
            venue = pickle.loads(pickle.dumps(venue))
        if x[0] == "tick":
            buf.append(x[1])
            continue
        flush()
        out.extend(venue.submit(x[1]) if x[0] == "order" else venue.cancel(x[1], x[2]))
    flush()
    out.append(venue.snapshot(inputs[-1][1].ts if inputs[-1][0] != "cancel" else inputs[-1][2]))
    return out, venue


def check_venue_pickle(factory: Callable[[], Any], inputs: tuple[Any, ...]) -> None:
    half = len(inputs) // 2
    _, v = _reports(factory(), inputs[:half])
    try:
        copy = pickle.loads(pickle.dumps(v))
    except Exception as e:
        raise AssertionError(f"state does not pickle: {e!r}") from e
    a, _ = _reports(v, inputs[half:])
    b, _ = _reports(copy, inputs[half:])
    assert a == b, "a restored copy does not continue as the original"


def check_venue_cuts(factory: Callable[[], Any], inputs: tuple[Any, ...]) -> None:
    whole, _ = _reports(factory(), inputs)
    assert any(r.kind in ("fill", "partial_fill") for r in whole), "no fill at all: the check would prove nothing"
    for cuts in CUTS[1:]:
        got, _ = _reports(factory(), inputs, cuts)
        first = next((i for i, (x, y) in enumerate(zip(whole, got, strict=True)) if x != y), None)
        assert got == whole, f"cut at {cuts}: reports differ from report {first} on"


def check_venue_warmup(factory: Callable[[], Any], inputs: tuple[Any, ...]) -> None:
    first_order = next(i for i, x in enumerate(inputs) if x[0] == "order")
    v = factory()
    before = v.on_ticks([x[1] for x in inputs[:first_order]])
    assert before == [], f"{len(before)} reports before any order"
    out, _ = _reports(v, inputs[first_order:])
    placed = {x[1].order_id: x[1].ts for x in inputs if x[0] == "order"}
    early = [r.id for r in out if r.kind in ("fill", "partial_fill") and r.ts < placed[r.client_order_id]]
    assert early == [], f"fills before their order: {early[:5]}"


def check_venue_bounded(factory: Callable[[], Any], inputs: tuple[Any, ...]) -> None:
    """The state does not grow with the market data: the orders first, then the ticks of the stream four times
    over (each pass later in time)."""
    orders = [x for x in inputs if x[0] == "order"][:6]
    ticks = [x[1] for x in inputs if x[0] == "tick"]
    span = ticks[-1].ts - ticks[0].ts + 1
    v = factory()
    for o in orders:
        v.submit(o[1])

    def shifted(k: int) -> list[Any]:
        return [Tick(**{**{f: getattr(t, f) for f in t.__struct_fields__}, "ts": t.ts + k * span}) for t in ticks]

    v.on_ticks(shifted(0))
    small = len(pickle.dumps(v))
    for k in range(1, 4):
        v.on_ticks(shifted(k))
    large = len(pickle.dumps(v))
    assert large <= 1.1 * small + 512, f"state grows with the ticks: {small} bytes after one pass, {large} after four"


VENUE_CHECKS = {
    "pickle": check_venue_pickle,
    "cuts": check_venue_cuts,
    "warmup": check_venue_warmup,
    "bounded": check_venue_bounded,
}


@pytest.mark.parametrize("check", sorted(VENUE_CHECKS))
@pytest.mark.parametrize("name", sorted(VENUES))
def test_venue_conforms(name: Any, check: Any) -> None:
    VENUE_CHECKS[check](lambda: build(VENUES[name]), venue_inputs())


# ------------------------------------------------------------------------------------- risk estimator checks


@lru_cache(maxsize=1)
def real_returns() -> np.ndarray:
    """Simple 30-minute returns of the bundled BTC closes (two years)."""
    c = read_bars(FILES[0]).frame["close"].to_numpy(dtype=np.float64)
    r: np.ndarray = c[1:] / c[:-1] - 1.0
    return r


ALPHA = 0.99


def _forecasts(est: Any, r: np.ndarray, cuts: tuple[int, ...] = ()) -> tuple[list[Any], Any]:
    out: list[Any] = []
    cut = set(cuts)
    for i, x in enumerate(r.tolist()):
        if i in cut:
            est = pickle.loads(pickle.dumps(est))
        est.update(x)
        out.append((est.ready, est.var(ALPHA), est.cvar(ALPHA)) if est.ready else (False,))
    return out, est


def check_estimator_pickle(factory: Callable[[], Any], r: np.ndarray) -> None:
    half = r.size // 2
    _, e = _forecasts(factory(), r[:half])
    try:
        copy = pickle.loads(pickle.dumps(e))
    except Exception as ex:
        raise AssertionError(f"state does not pickle: {ex!r}") from ex
    assert (copy.var(ALPHA), copy.cvar(ALPHA)) == (e.var(ALPHA), e.cvar(ALPHA))
    a, _ = _forecasts(e, r[half:])
    b, _ = _forecasts(copy, r[half:])
    assert a == b, "a restored copy does not continue as the original"


def check_estimator_cuts(factory: Callable[[], Any], r: np.ndarray) -> None:
    whole, _ = _forecasts(factory(), r)
    for cuts in CUTS[1:]:
        got, _ = _forecasts(factory(), r, cuts)
        first = next((i for i, (x, y) in enumerate(zip(whole, got, strict=True)) if x != y), None)
        assert got == whole, f"cut at {cuts}: forecasts differ from return {first} on"


def check_estimator_warmup(factory: Callable[[], Any], r: np.ndarray) -> None:
    e = factory()
    assert not e.ready, "ready before any return"
    with pytest.raises(ValueError):
        e.var(ALPHA)  # no number without data: an error, not a silent value
    need = getattr(e, "window", 1)
    for i, x in enumerate(r[: need + 5].tolist(), 1):
        e.update(x)
        assert e.ready == (i >= need), f"ready is {e.ready} after {i} returns, the window needs {need}"


def check_estimator_bounded(factory: Callable[[], Any], r: np.ndarray) -> None:
    e = factory()
    for x in r[:2000].tolist():
        e.update(x)
    small = len(pickle.dumps(e))
    for x in r[2000:10_000].tolist():
        e.update(x)
    large = len(pickle.dumps(e))
    assert large <= small + 64, f"state grows with the returns: {small} bytes after 2,000, {large} after 10,000"


ESTIMATOR_CHECKS = {
    "pickle": check_estimator_pickle,
    "cuts": check_estimator_cuts,
    "warmup": check_estimator_warmup,
    "bounded": check_estimator_bounded,
}


@pytest.mark.parametrize("check", sorted(ESTIMATOR_CHECKS))
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimator_conforms(name: Any, check: Any) -> None:
    r = real_returns()[: 12_000 if check == "bounded" else 2_500]
    ESTIMATOR_CHECKS[check](lambda: build(ESTIMATORS[name]), r)


def check_method_cuts(forecast: Callable[..., tuple[np.ndarray, np.ndarray]], r: np.ndarray, window: int) -> None:
    """Batch estimators: the forecast for a period is the same whether the series ends right after it or goes on
    (no look-ahead), wherever it is cut."""
    var, cvar = forecast(r, window)
    for end in (window + 1, window + 17, r.size // 2, r.size - 3):
        v, c = forecast(r[:end], window)
        assert np.array_equal(v, var[: end - window]) and np.array_equal(c, cvar[: end - window]), f"cut at {end}"


def check_method_warmup(forecast: Callable[..., tuple[np.ndarray, np.ndarray]], r: np.ndarray, window: int) -> None:
    """One forecast per period after the first full window, each a finite loss (negative), none before."""
    var, cvar = forecast(r, window)
    assert var.shape == cvar.shape == (r.size - window,), f"{var.shape} forecasts for {r.size - window} periods"
    assert np.isfinite(var).all() and (var < 0).all() and (cvar <= var).all()


@pytest.mark.parametrize("check", ["cuts", "warmup"])
@pytest.mark.parametrize("method", METHODS)
def test_batch_estimator_conforms(method: Any, check: Any) -> None:
    r = real_returns()[:3000]
    f = {"cuts": check_method_cuts, "warmup": check_method_warmup}[check]
    f(lambda x, w: rolling_forecasts(x, w, ALPHA, method), r, 500)


# ------------------------------------------------------------------------------------- every check can fail


def _target(sym: str, ts: int, t: float) -> StrategyTarget:
    return StrategyTarget("broken", sym, ts, t)


class _Trend:
    """A working hysteresis on the EMA spread, the base of the broken strategies below."""

    name = "broken"

    def __init__(self) -> None:
        self.pos: dict[str, float] = {}

    def want(self, sym: str, ts: int, fv: Any) -> StrategyTarget | None:
        if fv is None:
            return None
        s = fv[CORE_V1.features.index("ema_spread")]
        w = 1.0 if s > 0.004 else -1.0 if s < -0.004 else 0.0 if abs(s) < 0.001 else self.pos.get(sym, 0.0)
        if w == self.pos.get(sym, 0.0):
            return None
        self.pos[sym] = w
        return _target(sym, ts, w)

    def on_bar(
        self, symbol: str, ts: int, close: float, features: Any, *, score: Any = None, bar: Any = None
    ) -> StrategyTarget | None:
        return self.want(symbol, ts, features)


class _Unpicklable(_Trend):
    def __init__(self) -> None:
        super().__init__()
        self.hook = lambda x: x  # a lambda cannot be pickled


class _ForgetsAtRestore(_Trend):
    def __getstate__(self) -> dict[str, Any]:
        return {}  # drops the positions: after a cut it re-enters what it already holds

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.pos = {}


class _Eager(_Trend):
    def on_bar(
        self, symbol: str, ts: int, close: float, features: Any, *, score: Any = None, bar: Any = None
    ) -> StrategyTarget | None:
        if features is None and symbol not in self.pos:
            self.pos[symbol] = 0.0
            return _target(symbol, ts, 1.0)  # trades before its features are warm
        return super().on_bar(symbol, ts, close, features)


class _Hoarder(_Trend):
    def __init__(self) -> None:
        super().__init__()
        self.closes: list[float] = []

    def on_bar(
        self, symbol: str, ts: int, close: float, features: Any, *, score: Any = None, bar: Any = None
    ) -> StrategyTarget | None:
        self.closes.append(close)  # keeps every close it ever saw
        return super().on_bar(symbol, ts, close, features)


class _VenueBase:
    """A minimal working venue (market orders fill whole at the next tick of their symbol), the base of the broken
    venues below."""

    def __init__(self) -> None:
        from operators.execution.venue import SimVenue

        self.inner = SimVenue(1_000_000.0)
        self.name = "broken"

    def submit(self, order: Order) -> list[Any]:
        return self.inner.submit(order)

    def cancel(self, client_order_id: str, ts: int) -> list[Any]:
        return self.inner.cancel(client_order_id, ts)

    def on_ticks(self, ticks: Any) -> list[Any]:
        return self.inner.on_ticks(ticks)

    def snapshot(self, ts: int) -> Any:
        return self.inner.snapshot(ts)


class _VenueUnpicklable(_VenueBase):
    def __init__(self) -> None:
        super().__init__()
        self.clock = lambda: 0


class _VenueBatchSensitive(_VenueBase):
    def on_ticks(self, ticks: Any) -> list[Any]:
        return self.inner.on_ticks(list(ticks)[-1:])  # fills at the batch's last tick: where the batch ends matters


class _VenueEager(_VenueBase):
    def on_ticks(self, ticks: Any) -> list[Any]:
        out = self.inner.on_ticks(ticks)
        return out or ([self.inner.snapshot(ticks[0].ts)] if ticks else [])  # reports with no order in sight


class _VenueHoarder(_VenueBase):
    def __init__(self) -> None:
        super().__init__()
        self.tape: list[Any] = []

    def on_ticks(self, ticks: Any) -> list[Any]:
        ticks = list(ticks)
        self.tape.extend(ticks)
        return self.inner.on_ticks(ticks)


class _EstimatorBase:
    """A working rolling historical estimator, the base of the broken estimators below."""

    def __init__(self) -> None:
        self.e = operators.risk.RollingHistorical(window=250)

    @property
    def window(self) -> int:
        return self.e.window

    @property
    def ready(self) -> bool:
        return self.e.ready

    def update(self, r: float) -> None:
        self.e.update(r)

    def var(self, a: float) -> float:
        return self.e.var(a)

    def cvar(self, a: float) -> float:
        return self.e.cvar(a)


class _EstUnpicklable(_EstimatorBase):
    def __init__(self) -> None:
        super().__init__()
        self.f = lambda: 0


class _EstForgets(_EstimatorBase):
    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, s: dict[str, Any]) -> None:
        self.e = operators.risk.RollingHistorical(window=250)


class _EstEager(_EstimatorBase):
    @property
    def ready(self) -> bool:
        return self.e.n > 0  # "ready" with one return in a 250-return window


class _EstHoarder(_EstimatorBase):
    def __init__(self) -> None:
        super().__init__()
        self.all: list[float] = []

    def update(self, r: float) -> None:
        self.all.append(r)
        self.e.update(r)


def _peeking(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    v, c = rolling_forecasts(x, w, ALPHA, "historical")
    return v + 1e-4 * x[-1], c  # every forecast moves with the last return of the series: look-ahead


def _early(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    v, c = rolling_forecasts(x, w, ALPHA, "historical")
    return np.concatenate([[-0.01], v]), np.concatenate([[-0.02], c])  # a forecast before the first full window


BROKEN = [
    ("strategy pickle", check_strategy_pickle, _Unpicklable, strategy_inputs),
    ("strategy cuts", check_strategy_cuts, _ForgetsAtRestore, strategy_inputs),
    ("strategy warm-up", check_strategy_warmup, _Eager, strategy_inputs),
    ("strategy bounded", check_strategy_bounded, _Hoarder, strategy_inputs),
    ("venue pickle", check_venue_pickle, _VenueUnpicklable, venue_inputs),
    ("venue cuts", check_venue_cuts, _VenueBatchSensitive, venue_inputs),
    ("venue warm-up", check_venue_warmup, _VenueEager, venue_inputs),
    ("venue bounded", check_venue_bounded, _VenueHoarder, venue_inputs),
    ("estimator pickle", check_estimator_pickle, _EstUnpicklable, lambda: real_returns()[:2500]),
    ("estimator cuts", check_estimator_cuts, _EstForgets, lambda: real_returns()[:2500]),
    ("estimator warm-up", check_estimator_warmup, _EstEager, lambda: real_returns()[:2500]),
    ("estimator bounded", check_estimator_bounded, _EstHoarder, lambda: real_returns()[:12_000]),
]


@pytest.mark.parametrize("label,check,broken,inputs", BROKEN, ids=[b[0] for b in BROKEN])
def test_each_check_can_fail(label: Any, check: Any, broken: Any, inputs: Any) -> None:
    """Each check rejects a class broken in exactly its way, and passes the same class unbroken (its base)."""
    with pytest.raises(AssertionError):
        check(broken, inputs())
    check(broken.__mro__[1], inputs())


@pytest.mark.parametrize("check,bad", [(check_method_cuts, _peeking), (check_method_warmup, _early)])
def test_each_batch_estimator_check_can_fail(check: Any, bad: Any) -> None:
    r = real_returns()[:3000]
    with pytest.raises(AssertionError):
        check(bad, r, 500)
    check(lambda x, w: rolling_forecasts(x, w, ALPHA, "historical"), r, 500)
