"""The retraining service retrains on a model-drift alert from the real `alerts` topic, not without one."""

from __future__ import annotations

import pytest

from connectors.kafka.admin import ensure_topics
from connectors.kafka.sink import EventProducer
from flows.retrain import retrain_loop
from flows.settings import Settings
from schemas.events import Alert

pytestmark = pytest.mark.kafka


def test_drift_alert_triggers_a_retrain(kafka_bootstrap, topic_prefix, tmp_path):
    s = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, var_dir=tmp_path)
    ensure_topics(kafka_bootstrap, prefix=topic_prefix, names=["alerts"])
    calls: list[bool] = []

    def fake_train(var_dir, *, every_s, drift_requested, **kw):  # records what the loop asked for
        calls.append(drift_requested)
        return {"trained": True} if drift_requested else None

    assert retrain_loop(s, once=True, retrain=fake_train) == []  # no alert yet: the schedule alone is not due
    p = EventProducer(kafka_bootstrap, f"{topic_prefix}alerts", key_fn=lambda a: a.kind.encode())
    p.send(
        [
            Alert(
                id="a-1", severity="info", kind="sink_slow", message="x", dedupe_key="k1", ts=1_700_000_000_000_000_000
            ),
            Alert(
                id="a-2",
                severity="warning",
                kind="model_drift",
                message="ADWIN on river",
                dedupe_key="k2",
                ts=1_700_000_000_000_000_001,
            ),
        ]
    )
    p.flush()
    assert retrain_loop(s, once=True, retrain=fake_train) == [{"trained": True}]
    assert calls == [False, True]
    # the alerts were committed: the next check sees no new drift
    assert retrain_loop(s, once=True, retrain=fake_train) == [] and calls[-1] is False
