"""The tick stores hold exactly the ticks the input policy accepted (issue 15): a tick refused as ``unknown_symbol``,
``future_skew`` or ``duplicate_tick`` is a dead letter and nothing else; it is not a row of ``ticks``.

Before the fix ``flows/trading.py`` fed the tick sinks from the decoded batches, ahead of the ``split`` step where
the policy refuses ticks, so PostgreSQL (and ClickHouse) held ticks the decisions never saw: the unknown symbols and
the far-future ticks as extra rows (the duplicates hid behind the primary key). Here, on the real broker, PostgreSQL
and embedded ClickHouse, through ``levibot run --live --until-end``: small polls (``LEVIBOT_CONSUME_BATCH``) so that
both code paths of the policy run, whole columnar batches (no refusal) and tick-by-tick batches (some refused).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from connectors.history import iter_tick_events, load_history
from connectors.kafka.sink import EventProducer
from schemas.codec import encode
from schemas.events import DeadLetter, Tick
from tests.support import DATA, REPO
from tests.support.flowproc import (
    BAR_ARGS,
    create_topics,
    drop_topics,
    flow_env,
    new_prefix,
    read_events,
    run_ok,
    topic_count,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

MAX_BARS = 200  # per file: 2 x 200 bars x 8 ticks = 3,200 valid ticks


def clickhouse_trade_ids(path: Path) -> list[str]:
    """The trade ids in the flow's embedded ClickHouse, read in a child process (chDB opens one data path per
    process, and this test process may hold the session's)."""
    code = (
        "import json, sys; from connectors.clickhouse.client import connect; "
        "c = connect('chdb://' + sys.argv[1]); "
        "print(json.dumps([r[0] for r in c.query('SELECT trade_id FROM levibot.ticks FINAL').result_rows]))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(path.resolve())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_tick_stores_hold_exactly_the_ticks_the_policy_accepted(kafka_bootstrap, pg_dsn, tmp_path):
    history = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8, max_bars=MAX_BARS)
    valid = list(iter_tick_events(history.ticks))
    prefix = new_prefix("tkpol")
    expected: Counter = Counter()
    try:
        create_topics(kafka_bootstrap, prefix)
        p = EventProducer(kafka_bootstrap, f"{prefix}ticks")
        third = len(valid) // 3
        for i, t in enumerate(valid):
            p.produce_raw(t.symbol.encode(), encode(t))
            if third <= i < 2 * third and i % 10 == 0:  # refusals in the middle third only: clean polls before/after
                k = (i // 10) % 3
                if k == 0:
                    bad = Tick(
                        symbol="DOGE-USD", ts=t.ts, price=0.07, qty=10.0, side="buy", trade_id=f"doge:{i}", venue="test"
                    )
                    p.produce_raw(t.symbol.encode(), encode(bad))
                    expected["unknown_symbol"] += 1
                elif k == 1:
                    bad = Tick(
                        symbol=t.symbol,
                        ts=4_000_000_000 * 10**9 + i,
                        price=t.price,
                        qty=t.qty,
                        side=t.side,
                        trade_id=f"future:{i}",
                        venue="test",
                    )
                    p.produce_raw(t.symbol.encode(), encode(bad))
                    expected["future_skew"] += 1
                else:  # an exact copy of the tick just sent
                    p.produce_raw(t.symbol.encode(), encode(t))
                    expected["duplicate_tick"] += 1
        p.flush(120)
        n_in = topic_count(kafka_bootstrap, f"{prefix}ticks")
        env = flow_env(prefix=prefix, var=tmp_path / "var", LEVIBOT_PG_DSN=pg_dsn, LEVIBOT_CONSUME_BATCH="250")
        run_ok(
            ["run", "--live", "--venue", "sim", "--until-end", "--stores", "postgres,clickhouse", *BAR_ARGS],
            env,
            tmp_path / "flow.log",
            300,
        )
        dead = read_events(kafka_bootstrap, f"{prefix}dlq", DeadLetter)
    finally:
        drop_topics(kafka_bootstrap, [prefix])

    assert n_in == len(valid) + sum(expected.values())
    assert min(expected.values()) >= 10, expected
    # the dead letters: one per refused tick, counted by reason, in dlq and in PostgreSQL
    assert Counter(d.error for d in dead) == expected
    assert all(d.stage == "split" for d in dead)
    want = sorted(t.trade_id for t in valid)
    with psycopg.connect(pg_dsn) as conn:
        rows = [r[0] for r in conn.execute("SELECT trade_id FROM ticks").fetchall()]
        pg_dead = Counter(r[0] for r in conn.execute("SELECT error FROM dead_letters").fetchall())
    assert pg_dead == expected
    # the stores' tick rows are exactly the accepted ticks: no unknown symbol, no far-future tick, each valid once
    assert sorted(rows) == want, (len(rows), len(want), sorted(set(rows) - set(want))[:5])
    ch_rows = sorted(clickhouse_trade_ids(tmp_path / "var" / "clickhouse"))
    assert ch_rows == want, (len(ch_rows), len(want))
    # in = accepted (stored) + dead-lettered, exactly
    assert n_in == len(rows) + len(dead)
