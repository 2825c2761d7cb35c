"""A model pin through the running flow: a signed ``pin_model`` holds every symbol's scorer at the pinned registry
version while a newer champion is live; a pin of a version the registry cannot serve is refused."""

from __future__ import annotations

from bytewax.testing import run_main

from connectors.history import load_history
from connectors.history_source import HistorySource
from connectors.kafka.source import EventBatch
from connectors.memory import CollectSink
from connectors.model_registry import ChampionWatcher, ModelRegistry
from flows.embedded import EMBEDDED_PIPELINE
from flows.trading import Outputs, build_trading_flow
from operators.control import sign
from schemas.events import ControlCommand
from tests.support import DATA
from tests.support.models import RES, SPEC, trained_model
from tests.support.sources import ListSource

KEY = b"p" * 32


def test_a_pinned_model_scores_while_a_newer_champion_is_live(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    v1 = reg.register(trained_model(0, 1500), feature_set=SPEC.id, feature_set_version=1, horizon_ns=RES, metrics={})
    reg.promote(v1, "first")
    v2 = reg.register(trained_model(0, 3000), feature_set=SPEC.id, feature_set_version=1, horizon_ns=RES, metrics={})
    reg.promote(v2, "second")
    history = load_history([DATA / "BTC-30m.csv.gz"], ticks_per_bar=8, max_bars=1200)
    t0 = int(history.ticks.ts.iloc[0])
    pin = sign(
        ControlCommand(
            id="pin-v1",
            issuer="ops",
            scope="account:default",
            action="pin_model",
            parameters={"version": v1},
            reason="hold the previous model",
            ts=t0,
        ),
        KEY,
    )
    bad = sign(
        ControlCommand(
            id="pin-bad",
            issuer="ops",
            scope="account:default",
            action="pin_model",
            parameters={"version": "20990101T000000000000Z-00000000"},
            ts=t0,
        ),
        KEY,
    )
    out = {k: [] for k in ("scores", "dead", "audit")}
    flow = build_trading_flow(
        HistorySource(history.ticks, batch_size=500),
        Outputs(**{k: [CollectSink(v)] for k, v in out.items()}),
        EMBEDDED_PIPELINE,
        control_source=ListSource([EventBatch("control", 0, 2, [pin, bad], offsets=[0, 1])]),
        control_keys={"default": KEY},
        models=ChampionWatcher(reg, poll_s=0.0, feature_set=SPEC.id),
    )
    run_main(flow)
    used = [s.model_versions.get("lgbm") for s in out["scores"]]
    assert reg.latest_champion_version() == v2 and used
    first = used.index(v1)
    assert set(used[first:]) == {v1}, "once pinned, the scorer stays on the pinned version"
    assert set(used[:first]) <= {v2, None}
    assert [(d.error, d.stage) for d in out["dead"] if d.stage == "control"] == [("unknown_model", "control")]
    assert sorted((a.command_id, a.result) for a in out["audit"]) == [("pin-bad", "refused"), ("pin-v1", "applied")]
