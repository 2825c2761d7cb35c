"""The `levibot` command line: every command has --help."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from flows.settings import REPO_ROOT, Settings

#: Modules that add commands through ``register(app)``: imported only when one of their commands is asked for (or
#: the command list is shown), so ``levibot run`` does not pay for the API, training, sweep and control imports.
EXTENSIONS = (
    "flows.cli_edges",
    "flows.training",
    "flows.sweep",
    "flows.cli_control",
    "flows.cli_report",
    "flows.cli_api",
)


class _LazyGroup(TyperGroup):
    """The top-level command group: the commands of :data:`EXTENSIONS` are loaded on first need."""

    _extensions_loaded = False

    def _load_extensions(self) -> None:
        if self._extensions_loaded:
            return
        self._extensions_loaded = True
        ext = typer.Typer()
        for name in EXTENSIONS:
            importlib.import_module(name).register(ext)
        for cmd_name, cmd in typer.main.get_group(ext).commands.items():
            self.commands.setdefault(cmd_name, cmd)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and not self._extensions_loaded:
            self._load_extensions()
            cmd = super().get_command(ctx, cmd_name)
        return cmd

    def list_commands(self, ctx: Any) -> list[str]:
        self._load_extensions()
        return super().list_commands(ctx)


app = typer.Typer(
    help="LeviBot Stream: a real-time trading decision engine on Kafka and Bytewax.",
    no_args_is_help=True,
    add_completion=False,
    cls=_LazyGroup,
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
    from connectors.logging import configure_logging, json_logs_from_env
    from connectors.tracing import configure_tracing

    # LEVIBOT_LOG_FORMAT=json: one JSON object per line with correlation ids; spans go out only when
    # OTEL_EXPORTER_OTLP_ENDPOINT is set
    configure_logging(json=json_logs_from_env(), level=logging.DEBUG if verbose else logging.INFO)
    configure_tracing()


@topics_app.command("create")
def topics_create(
    partitions: int = typer.Option(0, help="Partitions for market topics (0 = registry default)."),
    prefix: str | None = typer.Option(None, help="Topic name prefix (default LEVIBOT_TOPIC_PREFIX)."),
) -> None:
    """Create every registry topic that is missing (idempotent)."""
    from connectors.kafka.admin import ensure_topics, wait_ready
    from schemas.topics import TOPICS

    s = _settings()
    wait_ready(s.kafka_bootstrap)
    overrides = (
        {n: partitions for n, spec in TOPICS.items() if partitions and spec.partitions > 1} if partitions else None
    )
    result = ensure_topics(s.kafka_bootstrap, prefix=s.topic_prefix if prefix is None else prefix, partitions=overrides)
    for topic, state in sorted(result.items()):
        typer.echo(f"{state:8} {topic}")


@topics_app.command("list")
def topics_list() -> None:
    """Show the registry: name, key, partitions, retention or compaction, event type."""
    from schemas.topics import TOPICS

    for name, spec in TOPICS.items():
        cfg = spec.kafka_config()
        typer.echo(
            f"{name:18} key={spec.key:12} partitions={spec.partitions:<3} {cfg.get('cleanup.policy', '')} "
            f"retention.ms={cfg.get('retention.ms', '-')} event={spec.event_type.__name__}"
        )


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
    files: list[Path] = typer.Argument(
        None, help="Bar or tick files (CSV, CSV.gz, Parquet). Default: the bundled BTC and ETH bars."
    ),
    topic: str = typer.Option("ticks", help="Registry topic to produce to."),
    speed: float = typer.Option(0.0, help="Event time / wall time: 1 = real time, 10 = 10x; 0 = as fast as possible."),
    ticks_per_bar: int = typer.Option(8, min=4, help="Synthetic ticks generated per bar when replaying bars."),
    symbol: str | None = typer.Option(None, help="Symbol for bar files that carry none."),
    max_bars: int | None = typer.Option(None, help="Use only the first N bars of each file."),
    from_clickhouse: bool = typer.Option(
        False, "--from-clickhouse", help="Read ticks from the ClickHouse `ticks` table instead of files."
    ),
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
    typer.echo(
        f"replayed {res.produced:,} ticks to {producer.topic} in {res.seconds:.1f}s ({res.rate:,.0f}/s); "
        f"{res.dead_letters} rejected rows to {dlq.topic}"
    )
    for sym, n in sorted(res.per_symbol.items()):
        typer.echo(f"  {sym:12} {n:,}")


def _pipeline_config(base: int, bars: str, decision: int, lateness: float, default, max_price_age: float = -1.0):
    try:
        res = tuple(int(x) for x in bars.split(",") if x.strip()) if bars else default.bar_resolutions_s
        from dataclasses import replace

        limits = default.limits if max_price_age < 0 else replace(default.limits, max_price_age_s=max_price_age)
        return replace(
            default,
            base_resolution_s=base or default.base_resolution_s,
            bar_resolutions_s=res,
            decision_resolution_s=decision or default.decision_resolution_s,
            allowed_lateness_s=default.allowed_lateness_s if lateness < 0 else lateness,
            limits=limits,
        )
    except ValueError as exc:
        _fail(f"bad bar settings: {exc}")


_BASE = typer.Option(0, "--base-resolution", help="Base bar length, s (0 = default).")
_BARS = typer.Option("", "--bar-resolutions", help="Derived bar lengths, s, comma separated (empty = default).")
_DECISION = typer.Option(0, "--decision-resolution", help="Bars that drive features and strategies, s (0 = default).")
_LATENESS = typer.Option(-1.0, "--lateness", help="Allowed lateness of ticks, s (negative = default).")
_PRICE_AGE = typer.Option(
    -1.0,
    "--max-price-age",
    help="Oldest last trade the risk gate accepts at a decision, s of "
    "event time (negative = default: 60 s live, 3600 s for the bundled 30-minute history).",
)


@app.command()
def run(
    live: bool = typer.Option(
        False, "--live", help="Run on Kafka and the stores (default when LEVIBOT_KAFKA_BOOTSTRAP is set)."
    ),
    embedded: bool = typer.Option(
        False, "--embedded", help="Force the embedded default even when Kafka is configured."
    ),
    processes: int = typer.Option(1, min=1, help="Processes in the Bytewax cluster (live)."),
    process_id: int = typer.Option(0, min=0, help="This process's index in the cluster (live)."),
    addresses: str = typer.Option("", help="Cluster addresses host:port;host:port (default 127.0.0.1:2101+i)."),
    recovery_dir: Path | None = typer.Option(None, help="Bytewax recovery directory (live); created on first use."),
    snapshot_interval: float = typer.Option(10.0, help="Seconds between snapshots (epoch length, live)."),
    until_end: bool = typer.Option(False, help="Stop when the input topics are read to their current end (live)."),
    stores: str = typer.Option("postgres,clickhouse", help="Stores to write (live): postgres, clickhouse, or none."),
    venue: str = typer.Option(
        "paper",
        help="Live: 'paper' sends orders to `orders` and books only the venue's "
        "execution.reports (run `levibot paper-venue` or an exchange adapter); 'sim' simulates "
        "fills inside the flow, deterministically (replays, backtest parity).",
    ),
    max_bars: int | None = typer.Option(None, help="Embedded: use only the first N bars of each bundled file."),
    base_resolution: int = _BASE,
    bar_resolutions: str = _BARS,
    decision_resolution: int = _DECISION,
    lateness: float = _LATENESS,
    max_price_age: float = _PRICE_AGE,
) -> None:
    """Run the main job. With no configuration: the embedded default over the bundled BTC/ETH history."""
    import os

    s = _settings()
    if (live or os.environ.get("LEVIBOT_KAFKA_BOOTSTRAP")) and not embedded:
        from flows.live import run_live
        from operators.pipeline import PipelineConfig

        cfg = _pipeline_config(
            base_resolution, bar_resolutions, decision_resolution, lateness, PipelineConfig(), max_price_age
        )
        chosen = {x.strip() for x in stores.split(",") if x.strip() and x.strip() != "none"}
        unknown = chosen - {"postgres", "clickhouse"}
        if unknown:
            _fail(f"unknown stores {sorted(unknown)}; use postgres, clickhouse or none")
        if process_id >= processes:
            _fail("--process-id must be below --processes")
        if venue not in ("paper", "sim"):
            _fail(f"--venue must be paper or sim, got {venue!r}")
        run_live(
            s,
            cfg,
            stores=chosen,
            processes=processes,
            process_id=process_id,
            addresses=[a for a in addresses.split(";") if a] or None,
            recovery_dir=recovery_dir,
            snapshot_interval_s=snapshot_interval,
            until_end=until_end,
            venue=venue,
        )
        return
    from flows.embedded import EMBEDDED_PIPELINE, run_embedded

    cfg = _pipeline_config(
        base_resolution, bar_resolutions, decision_resolution, lateness, EMBEDDED_PIPELINE, max_price_age
    )
    run_embedded(s, BUNDLED, cfg, max_bars=max_bars)


@app.command("paper-venue")
def paper_venue(
    cash: float = typer.Option(100_000.0, help="Starting cash of the paper account, quote currency."),
    account: str = typer.Option("default", help="Account whose orders this venue answers."),
    name: str = typer.Option("paper", help="Venue name (report ids are <name>:<account>:<seq>)."),
    from_beginning: bool = typer.Option(True, help="Read `ticks` from the beginning (replays) or only new ticks."),
    latency: float = typer.Option(0.05, help="Order to earliest fill, s of event time."),
    participation: float = typer.Option(0.25, help="Largest share of one trade's quantity an order may take."),
    ttl: float = typer.Option(600.0, help="An order's unfilled rest is cancelled this long after it was due, s."),
    fee_bps: float = typer.Option(7.5, help="Taker fee, bps of notional."),
    max_order_notional: float = typer.Option(float("inf"), help="Larger orders are rejected, quote currency."),
    snapshot_every: int = typer.Option(1000, min=0, help="Positions snapshot (for reconciliation) every N ticks."),
    idle_exit: float | None = typer.Option(None, help="Exit after this many seconds without a message."),
    phantom: str = typer.Option("", hidden=True, help="Test hook SYMBOL:QTY:AFTER_FILLS (an unreported position)."),
) -> None:
    """The paper venue: answers the flow's `orders` with execution reports, filling against `ticks`."""
    from flows.paper_venue import run_paper_venue
    from operators.execution.paper_venue import PaperVenue

    s = _settings()
    v = PaperVenue(
        s.symbol_list,
        cash=cash,
        name=name,
        account=account,
        latency_s=latency,
        max_participation=participation,
        ttl_s=ttl,
        taker_fee_bps=fee_bps,
        max_order_notional=max_order_notional,
        snapshot_every=snapshot_every,
    )
    kw: dict = {}
    if phantom:
        sym, qty, after = phantom.split(":")
        kw = dict(phantom_symbol=sym, phantom_qty=float(qty), phantom_after_fills=int(after))
    counts = run_paper_venue(s, v, from_beginning=from_beginning, idle_exit_s=idle_exit, **kw)
    typer.echo(
        f"paper venue {name}: {counts['orders']:,} orders, {counts['ticks']:,} ticks, "
        f"{counts['reports']:,} reports, {counts['dead']:,} dead letters"
    )


@app.command()
def backtest(
    files: list[Path] = typer.Argument(None, help="Bar or tick files (default: the bundled BTC and ETH bars)."),
    orders_out: Path | None = typer.Option(None, help="Write the orders as JSON lines here."),
    ticks_per_bar: int = typer.Option(8, min=4, help="Synthetic ticks per bar when the input is bars."),
    max_bars: int | None = typer.Option(None, help="Use only the first N bars of each file."),
    store: bool = typer.Option(False, help="Also store everything in ClickHouse (LEVIBOT_CLICKHOUSE_DSN or embedded)."),
    base_resolution: int = _BASE,
    bar_resolutions: str = _BARS,
    decision_resolution: int = _DECISION,
    lateness: float = _LATENESS,
    max_price_age: float = _PRICE_AGE,
) -> None:
    """The identical trading flow over history, in event time, in this process; ends with a tear sheet."""
    from connectors.history import load_history
    from flows.embedded import run_history
    from flows.reporting import publish, run_report
    from operators.pipeline import PipelineConfig
    from schemas.codec import encode

    s = _settings()
    # the live flow's defaults, so that a backtest and a live run of the same settings decide alike
    cfg = _pipeline_config(
        base_resolution, bar_resolutions, decision_resolution, lateness, PipelineConfig(), max_price_age
    )
    paths = files or BUNDLED
    for p in paths:
        if not p.exists():
            _fail(f"no such file: {p}")
    history = load_history(paths, ticks_per_bar=ticks_per_bar, max_bars=max_bars)
    res = run_history(history, s.clickhouse_dsn_resolved if store else None, cfg, progress=sys.stderr.isatty())
    if orders_out:
        orders_out.parent.mkdir(parents=True, exist_ok=True)
        orders_out.write_bytes(
            b"".join(encode(o) + b"\n" for o in sorted(res.orders, key=lambda o: (o.ts, o.order_id)))
        )
    rep = run_report(res, history, cfg.decision_resolution_s, kind="backtest", title="LeviBot Stream — backtest")
    publish(rep, s.var_dir / "reports", "backtest", echo=typer.echo)


@app.command()
def retrain(
    every: float = typer.Option(7 * 86400, help="Retrain when the newest model is older than this, s."),
    poll: float = typer.Option(60.0, help="Seconds between checks of the schedule and the alerts topic."),
    once: bool = typer.Option(False, help="Check once (schedule and pending drift alerts) and exit."),
) -> None:
    """Retraining service: on a schedule and on model-drift alerts; promotion only through champion/challenger."""
    from flows.retrain import retrain_loop

    done = retrain_loop(_settings(), every_s=every, poll_s=poll, once=once)
    if once:
        typer.echo(f"retrained {len(done)} time(s)" if done else "nothing due")


@app.command("recovery-init")
def recovery_init(
    directory: Path = typer.Argument(..., help="Recovery directory."),
    partitions: int = typer.Option(1, min=1, help="Recovery partitions (>= processes is typical)."),
) -> None:
    """Create Bytewax recovery partitions for a live run (once; existing partitions are kept)."""
    from flows.live import init_recovery

    init_recovery(directory, partitions)
    typer.echo(f"recovery partitions ready in {directory}")


if __name__ == "__main__":  # pragma: no cover
    app()
