"""Models inside the running flow: a champion promoted mid-run is picked up without a restart, and the
online model's pending predictions survive a stop and resume through Bytewax recovery."""

from __future__ import annotations

import pickle

from bytewax.recovery import RecoveryConfig
from bytewax.testing import run_main

from connectors.history import iter_tick_events, load_history
from connectors.history_source import HistorySource
from connectors.memory import CollectSink
from connectors.model_registry import ChampionWatcher, ModelRegistry
from flows.embedded import EMBEDDED_PIPELINE
from flows.live import init_recovery
from flows.trading import Outputs, build_trading_flow
from operators.models import build_training_set, train_lightgbm
from operators.signal_stage import SignalStage
from tests.support import DATA
from tests.support.models import FAST, SPEC, btc_bars_and_features


def _champion(tmp_path) -> tuple[ModelRegistry, str]:
    bars, feats = btc_bars_and_features()
    ds = build_training_set(feats, bars, SPEC, audit=False)
    model = train_lightgbm(ds.X[:2000], ds.y[:2000], ds.ts[:2000], ds.names, FAST)
    reg = ModelRegistry(tmp_path / "models")
    version = reg.register(
        model, feature_set=SPEC.id, feature_set_version=SPEC.version, horizon_ns=1800 * 10**9, metrics={}
    )
    return reg, version


def test_promoted_model_is_hot_swapped_while_the_flow_runs(tmp_path):
    reg, version = _champion(tmp_path)
    history = load_history([DATA / "BTC-30m.csv.gz"], ticks_per_bar=8, max_bars=1200)
    scores: list = []
    promoted_at = []
    seen = [0]

    def progress(n: int) -> None:  # promote once a third of the input has gone through, from inside the run
        seen[0] += n
        if not promoted_at and seen[0] >= len(history) // 3:
            reg.promote(version, "test")
            promoted_at.append(seen[0])

    watcher = ChampionWatcher(reg, poll_s=0.0, feature_set=SPEC.id)
    flow = build_trading_flow(
        HistorySource(history.ticks, batch_size=500),
        Outputs(scores=[CollectSink(scores)]),
        EMBEDDED_PIPELINE,
        progress=progress,
        models=watcher,
    )
    run_main(flow)
    assert promoted_at
    before = [s for s in scores if "lgbm" not in s.model_versions]
    after = [s for s in scores if s.model_versions.get("lgbm") == version]
    assert before and after and len(before) + len(after) == len(scores)
    assert max(s.ts for s in before) < min(s.ts for s in after)  # one switch, no flapping
    assert all("lgbm" in s.raw for s in after) and all("lgbm" not in s.raw for s in before)


class _StopAfter(HistorySource):
    """The history source, but the run ends (as a stopped process would) after ``limit`` batches."""

    def __init__(self, ticks, limit: int | None, **kw) -> None:
        super().__init__(ticks, **kw)
        self.limit = limit

    def build_part(self, step_id, for_part, resume_state):
        part = super().build_part(step_id, for_part, resume_state)
        if self.limit is None:
            return part
        inner_next, left = part.next_batch, [self.limit]

        def next_batch():
            if left[0] <= 0:
                raise StopIteration()
            left[0] -= 1
            return inner_next()

        part.next_batch = next_batch
        return part


def test_online_model_pending_predictions_survive_recovery(tmp_path):
    history = load_history([DATA / "BTC-30m.csv.gz"], ticks_per_bar=8, max_bars=800)
    rec = tmp_path / "recovery"
    init_recovery(rec, 1)

    def run(limit: int | None, scores: list, rec_dir=rec) -> None:
        flow = build_trading_flow(
            _StopAfter(history.ticks, limit, batch_size=200, partitions=1),
            Outputs(scores=[CollectSink(scores)]),
            EMBEDDED_PIPELINE,
        )
        run_main(flow, epoch_interval=None, recovery_config=RecoveryConfig(str(rec_dir)) if rec_dir else None)

    reference: list = []
    run(None, reference, rec_dir=None)
    first, second = [], []
    run(9, first)  # stops mid-stream with predictions still waiting for their labels
    run(None, second)  # resumes from the snapshot
    assert first and second and min(s.ts for s in second) > min(s.ts for s in first)  # really resumed
    assert len(first) + len(second) <= len(reference) + 50  # at most one epoch of re-emission
    merged = {s.ts: s for s in first}
    merged.update({s.ts: s for s in second})
    ref = {s.ts: s for s in reference}
    assert set(merged) == set(ref)
    # River learned from every label across the restart: its scores after the resume equal the uninterrupted run
    assert all(merged[t].raw == ref[t].raw for t in ref)

    # and the pending predictions are part of the pickled pipeline state
    p = SignalStage("BTC-USD", EMBEDDED_PIPELINE)
    p.on_batch(list(iter_tick_events(history.ticks.head(3000))))
    assert p.scorer.pending and pickle.loads(pickle.dumps(p)).scorer.pending.__len__() == len(p.scorer.pending)
