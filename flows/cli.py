"""The `levibot` command line: every command has --help."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from flows.settings import REPO_ROOT, Settings

app = typer.Typer(
    help="LeviBot Stream: a real-time trading decision engine on Kafka and Bytewax.",
    no_args_is_help=True,
    add_completion=False,
)
topics_app = typer.Typer(help="Kafka topics from the registry in schemas/topics.py.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations (PostgreSQL/TimescaleDB and ClickHouse).", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")

BUNDLED = [REPO_ROOT / "data" / "market" / "BTC-30m.csv.gz", REPO_ROOT / "data" / "market" / "ETH-30m.csv.gz"]


def _fail(msg: str) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        _fail(str(exc))
        raise  # unreachable


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@topics_app.command("create")
def topics_create(
    partitions: int = typer.Option(0, help="Partitions for market topics (0 = registry default)."),
    prefix: Optional[str] = typer.Option(None, help="Topic name prefix (default LEVIBOT_TOPIC_PREFIX)."),
) -> None:
    """Create every registry topic that is missing (idempotent)."""
    from connectors.kafka.admin import ensure_topics, wait_ready
    from schemas.topics import TOPICS

    s = _settings()
    wait_ready(s.kafka_bootstrap)
    overrides = {n: partitions for n, spec in TOPICS.items() if partitions and spec.partitions > 1} if partitions else None
    result = ensure_topics(s.kafka_bootstrap, prefix=s.topic_prefix if prefix is None else prefix, partitions=overrides)
    for topic, state in sorted(result.items()):
        typer.echo(f"{state:8} {topic}")


@topics_app.command("list")
def topics_list() -> None:
    """Show the registry: name, key, partitions, retention or compaction, event type."""
    from schemas.topics import TOPICS

    for name, spec in TOPICS.items():
        cfg = spec.kafka_config()
        typer.echo(f"{name:18} key={spec.key:12} partitions={spec.partitions:<3} {cfg.get('cleanup.policy', '')} "
                   f"retention.ms={cfg.get('retention.ms', '-')} event={spec.event_type.__name__}")


@db_app.command("migrate")
def db_migrate(
    postgres: bool = typer.Option(True, help="Migrate PostgreSQL/TimescaleDB (LEVIBOT_PG_DSN)."),
    clickhouse: bool = typer.Option(True, help="Migrate ClickHouse (LEVIBOT_CLICKHOUSE_DSN; embedded by default)."),
) -> None:
    """Apply pending schema migrations; safe to run any number of times."""
    s = _settings()
    if postgres:
        from connectors.postgres.migrate import migrate as pg_migrate

        applied = pg_migrate(s.pg_dsn)
        typer.echo(f"postgres: applied {applied or 'nothing (up to date)'}")
    if clickhouse:
        from connectors.clickhouse.client import connect
        from connectors.clickhouse.migrate import migrate as ch_migrate

        applied = ch_migrate(connect(s.clickhouse_dsn_resolved))
        typer.echo(f"clickhouse: applied {applied or 'nothing (up to date)'}")


@app.command()
def replay(
    files: list[Path] = typer.Argument(None, help="Bar or tick files (CSV, CSV.gz, Parquet). Default: the bundled BTC and ETH bars."),
    topic: str = typer.Option("ticks", help="Registry topic to produce to."),
    speed: float = typer.Option(0.0, help="Event time / wall time: 1 = real time, 10 = 10x; 0 = as fast as possible."),
    ticks_per_bar: int = typer.Option(8, min=4, help="Synthetic ticks generated per bar when replaying bars."),
    symbol: Optional[str] = typer.Option(None, help="Symbol for bar files that carry none."),
    max_bars: Optional[int] = typer.Option(None, help="Use only the first N bars of each file."),
    from_clickhouse: bool = typer.Option(False, "--from-clickhouse", help="Read ticks from the ClickHouse `ticks` table instead of files."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Replay history into Kafka in event-time order; bars become synthetic ticks (marked synthetic)."""
    from connectors.history import load_history
    from connectors.kafka.admin import ensure_topics, wait_ready
    from connectors.kafka.sink import EventProducer, key_by_source_topic
    from flows.replay import replay as do_replay

    s = _settings()
    if from_clickhouse:
        from connectors.clickhouse.client import connect
        from connectors.clickhouse.history import load_ticks

        history = load_ticks(connect(s.clickhouse_dsn_resolved))
    else:
        paths = files or BUNDLED
        for p in paths:
            if not p.exists():
                _fail(f"no such file: {p}")
        history = load_history(paths, ticks_per_bar=ticks_per_bar, symbol=symbol, max_bars=max_bars)
    if not len(history):
        _fail("nothing to replay: the input holds no usable ticks")
    wait_ready(s.kafka_bootstrap)
    ensure_topics(s.kafka_bootstrap, prefix=s.topic_prefix, names=[topic, "dlq"])
    producer = EventProducer(s.kafka_bootstrap, s.topic(topic))
    dlq = EventProducer(s.kafka_bootstrap, s.topic("dlq"), key_fn=key_by_source_topic)
    res = do_replay(history, producer, dlq, speed=speed, progress=progress and sys.stderr.isatty())
    typer.echo(f"replayed {res.produced:,} ticks to {producer.topic} in {res.seconds:.1f}s ({res.rate:,.0f}/s); "
               f"{res.dead_letters} rejected rows to {dlq.topic}")
    for sym, n in sorted(res.per_symbol.items()):
        typer.echo(f"  {sym:12} {n:,}")


@app.command()
def run() -> None:
    """Run the main job. With no configuration: the embedded default over the bundled BTC/ETH history."""
    from flows.embedded import run_embedded

    run_embedded(_settings(), BUNDLED)


if __name__ == "__main__":  # pragma: no cover
    app()
