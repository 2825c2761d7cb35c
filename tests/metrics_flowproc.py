"""A process that runs the real trading flow over bundled history with metrics enabled, then keeps serving them.

    python tests/metrics_flowproc.py PORT SUMMARY_JSON [MAX_BARS]

Wiring (the same calls the live flow makes): the ``progress`` hook -> ``FlowMetrics.observe_input``, ``on_orders``
-> ``FlowMetrics.observe_orders``, and sinks on the bars, decisions, orders, fills and marks outputs ->
``FlowMetrics.observe_emitted``. When the flow has ended it writes what it emitted to SUMMARY_JSON and serves
``/metrics`` until it is terminated.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bytewax.outputs import DynamicSink, StatelessSinkPartition  # noqa: E402
from bytewax.testing import run_main  # noqa: E402

from connectors.batching import flatten  # noqa: E402
from connectors.history import load_history  # noqa: E402
from connectors.history_source import HistorySource  # noqa: E402
from connectors.metrics import FlowMetrics, start_metrics_server  # noqa: E402
from flows.embedded import EMBEDDED_PIPELINE  # noqa: E402
from flows.trading import Outputs, build_trading_flow  # noqa: E402
from operators.pipeline import Emitted  # noqa: E402


class _Part(StatelessSinkPartition):
    def __init__(self, fn) -> None:
        self.fn = fn

    def write_batch(self, items: list) -> None:
        self.fn(flatten(items))


class CallSink(DynamicSink):
    def __init__(self, fn) -> None:
        self.fn = fn

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Part:
        return _Part(self.fn)


def main() -> None:
    port, summary_path = int(sys.argv[1]), Path(sys.argv[2])
    max_bars = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    start_metrics_server(port, addr="127.0.0.1")
    fm = FlowMetrics()
    counts = {"ticks": 0, "bars": 0, "orders": 0, "fills": 0, "decisions": 0}
    orders_by_symbol: dict[str, int] = {}

    def by_symbol(kind: str):
        def fn(events: list) -> None:
            counts[kind] += len(events)
            groups: dict[str, list] = {}
            for e in events:
                groups.setdefault(e.symbol, []).append(e)
            for sym, evs in groups.items():
                if kind == "orders":
                    orders_by_symbol[sym] = orders_by_symbol.get(sym, 0) + len(evs)
                fm.observe_emitted(sym, Emitted(**{kind: evs}))
        return fn

    def marks(items: list) -> None:
        for sym, ts, eq in items:
            fm.observe_emitted(sym, Emitted(marks=[(ts, eq)]))

    def progress(n: int) -> None:
        counts["ticks"] += n
        fm.observe_input(n)

    history = load_history([ROOT / "data/market/BTC-30m.csv.gz", ROOT / "data/market/ETH-30m.csv.gz"],
                           ticks_per_bar=8, max_bars=max_bars)
    out = Outputs(bars=[CallSink(by_symbol("bars"))], decisions=[CallSink(by_symbol("decisions"))],
                  orders=[CallSink(by_symbol("orders"))], fills=[CallSink(by_symbol("fills"))],
                  marks=[CallSink(marks)])
    flow = build_trading_flow(HistorySource(history.ticks, partitions=2, batch_size=2000), out, EMBEDDED_PIPELINE,
                              progress=progress, on_orders=fm.observe_orders)
    run_main(flow)
    summary_path.write_text(json.dumps({**counts, "orders_by_symbol": orders_by_symbol}))
    while True:  # keep serving /metrics until terminated
        time.sleep(1)


if __name__ == "__main__":
    main()
