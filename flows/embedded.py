"""`levibot run` on its embedded default: bundled history through the flow, into embedded ClickHouse.

No service is needed: the history is replayed in-process through the same Bytewax wiring the live
path uses (a Kafka-shaped source of tick batches), bars are built by ``operators.bars``, and ticks,
bars and dead letters are stored in ClickHouse embedded through chDB under ``<var>/clickhouse``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import run_main
from tqdm import tqdm

from connectors.clickhouse.client import connect
from connectors.clickhouse.migrate import migrate
from connectors.clickhouse.sink import ClickHouseSink
from connectors.history import load_history
from connectors.history_source import HistorySource
from connectors.kafka.source import EventBatch
from flows.settings import Settings
from operators.bars import MultiBarAggregator
from schemas.events import Bar, DeadLetter, Tick

DATABASE = "levibot"


@dataclass(frozen=True)
class EmbeddedConfig:
    """Knobs of the embedded run: base bar resolution (s), synthetic ticks per source bar, batch size (ticks)."""

    resolution_s: int = 60
    ticks_per_bar: int = 8
    batch_size: int = 5000
    partitions: int = 2
    max_bars: int | None = None


def _bars_step(state: MultiBarAggregator | None, batch: EventBatch, resolution_s: int) -> tuple[MultiBarAggregator, list[Bar]]:
    agg = state if state is not None else MultiBarAggregator(resolution_s)
    res = agg.add(batch.events)
    return agg, [Bar(**b.as_kwargs()) for b in res.bars]


def build_flow(source, ch_dsn: str, resolution_s: int, progress: tqdm | None = None) -> Dataflow:
    """Wire: tick batches -> (ticks, dead letters) stores; per-partition bar state -> bars store."""
    flow = Dataflow("levibot-embedded")
    batches = op.input("ticks_in", flow, source)
    if progress is not None:
        batches = op.inspect("progress", batches, lambda _s, b: progress.update(b.size))
    op.output("ticks_store", op.map("tick_events", batches, lambda b: b.events),
              ClickHouseSink(ch_dsn, "ticks", Tick, database=DATABASE))
    dead = op.filter("has_dead", op.map("dead_letters", batches, lambda b: b.dead), bool)
    op.output("dlq_store", dead, ClickHouseSink(ch_dsn, "dead_letters", DeadLetter, database=DATABASE))
    keyed = op.key_on("by_partition", batches, lambda b: f"{b.topic}/{b.partition}")
    bars = op.stateful_map("bars", keyed, lambda s, b: _bars_step(s, b, resolution_s))
    op.output("bars_store", op.filter("has_bars", op.key_rm("bars_unkeyed", bars), bool),
              ClickHouseSink(ch_dsn, "bars", Bar, database=DATABASE))
    return flow


def run_embedded(settings: Settings, files: list[Path], cfg: EmbeddedConfig = EmbeddedConfig()) -> dict[str, int]:
    """Run the embedded default and print a summary; returns the stored counts."""
    t0 = time.monotonic()
    history = load_history(files, ticks_per_bar=cfg.ticks_per_bar, max_bars=cfg.max_bars)
    dsn = settings.clickhouse_dsn_resolved
    client = connect(dsn)
    migrate(client, DATABASE)
    bar = tqdm(total=len(history), unit="tick", unit_scale=True, desc="levibot run", disable=not sys.stderr.isatty())
    flow = build_flow(HistorySource(history.ticks, partitions=cfg.partitions, batch_size=cfg.batch_size), dsn,
                      cfg.resolution_s, bar)
    run_main(flow)
    bar.close()
    counts = {t: client.query(f"SELECT count() FROM {DATABASE}.{t} FINAL").result_rows[0][0]
              for t in ("ticks", "bars", "dead_letters")}
    secs = time.monotonic() - t0
    print(f"\nLeviBot Stream — embedded run over {len(files)} files in {secs:.1f}s")
    print(f"  ticks replayed   {len(history):>12,}  ({len(history) / secs:,.0f}/s)")
    print(f"  rejected rows    {len(history.rejects):>12,}")
    for t, n in counts.items():
        print(f"  stored {t:<10}{n:>12,}")
    print(f"  store            {dsn}")
    return counts
