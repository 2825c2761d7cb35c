"""Fuzzing every decoder and parser that takes outside input (issue 15 item 3): zero crashes.

Outside input: ticks (``schemas.codec.decode`` / ``decode_many`` and the Kafka source's ``decode_messages``),
signals, Telegram webhook bodies (decode -> ``inbound_from_update`` -> ``ingest_message``, the whole ingest path,
with state), Telegram message text (``parse_message``), control commands (decode -> ``verify`` ->
``ControlState.apply``), execution reports and alerts from Kafka, and the operator API's request bodies.

Two generators per decoder:

* **byte-level mutation** of real recorded messages (a seeded loop, the bulk: ``CASES`` per decoder): bit flips,
  inserted and deleted bytes, truncation, splices of two seeds, structural JSON bytes, extreme numbers, bytes that
  are not UTF-8, escaped surrogates and NULs. Seeds: ticks of the bundled BTC/ETH history, the messages of the
  Telegram export in ``tests/support/data``, signals parsed from them, commands signed as ``levibot control`` signs them;
* **hypothesis**: JSON documents with the event's own field names and arbitrary JSON values (``max_examples`` each,
  ``deadline=None``).

"Crash" = any exception other than the decoder's documented rejection (``DecodeError`` with a reason code, pydantic's
``ValidationError`` for the API). Every case is counted; the test also requires that valid and rejected outcomes both
occur (a fuzzer whose every case is rejected at the first byte tests nothing), and checks an invariant on each
accepted case (a decoded event re-encodes to an equal event; no mutated command ever verifies under the key unless it
is byte-for-byte an original).
"""

from __future__ import annotations

import json
import random
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.history import iter_tick_events, load_history
from connectors.kafka.decode import decode_messages
from operators.control.signing import canonical_bytes, sign, verify
from operators.control.state import ControlState
from operators.signals.lifecycle_state import inbound_from_update, ingest_message
from operators.signals.parser import parse_message
from operators.signals.results import LifecycleUpdate, Rejection, SignalDraft
from schemas.codec import DecodeError, decode, decode_many, encode
from schemas.events import Alert, ControlCommand, DeadLetter, ExecutionReport, Signal, TelegramUpdate, Tick
from tests.support import DATA, TEST_DATA
from tests.support.fuzz import mutate

EXPORT = TEST_DATA / "telegram_export.json"
CASES = 10_000  # byte-level mutations per decoder (the floor)
HYPOTHESIS_CASES = 300
KEY = b"fuzz-control-key-0123456789abcdef"
CHAT = -1001876543210


class Fuzz:
    """Runs one decoder over seeds and mutations; collects outcomes and crashes."""

    def __init__(self, name: str, fn: Callable[[bytes], str], allowed: tuple[type[BaseException], ...]) -> None:
        self.name, self.fn, self.allowed = name, fn, allowed
        self.outcomes: Counter[str] = Counter()
        self.crashes: list[tuple[bytes, str]] = []
        self.cases = 0

    def one(self, data: bytes) -> None:
        self.cases += 1
        try:
            self.outcomes[self.fn(data)] += 1
        except self.allowed as exc:
            reason = getattr(exc, "reason", type(exc).__name__)
            assert reason, f"{self.name}: a rejection without a reason for {data[:200]!r}"
            self.outcomes[f"rejected:{reason}"] += 1
        except Exception:  # that is what a crash is
            self.crashes.append((data, traceback.format_exc(limit=4)))

    def run(self, seeds: list[bytes], n: int, rng_seed: int) -> Fuzz:
        rng = random.Random(rng_seed)
        for s in seeds:
            self.one(s)
        while self.cases < n + len(seeds):
            self.one(mutate(rng, rng.choice(seeds), seeds))
        return self

    def check(self) -> None:
        if self.crashes:
            data, tb = self.crashes[0]
            raise AssertionError(
                f"{self.name}: {len(self.crashes)} crashes in {self.cases} cases; first input {data[:300]!r}\n{tb}"
            )
        ok = sum(v for k, v in self.outcomes.items() if not k.startswith("rejected:"))
        rejected = self.cases - ok
        assert self.cases >= CASES, (self.name, self.cases)
        assert ok > 0 and rejected > 0, (self.name, dict(self.outcomes))


def _roundtrip(event_type: type) -> Callable[[bytes], str]:
    def fn(data: bytes) -> str:
        ev = decode(data, event_type)
        again = decode(encode(ev), event_type)
        assert again == ev, (ev, again)  # an accepted event survives its own encoding: AssertionError is a crash
        return "ok"

    return fn


# -- seeds: real recorded messages -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tick_seeds() -> list[bytes]:
    history = load_history([DATA / "BTC-30m.csv.gz", DATA / "ETH-30m.csv.gz"], ticks_per_bar=8, max_bars=40)
    return [encode(t) for t in iter_tick_events(history.ticks)][:300]


def _export_messages() -> list[dict]:
    return [m for m in json.loads(EXPORT.read_text())["messages"] if m.get("type") == "message"]


def _text(m: dict) -> str:
    t = m.get("text", "")
    return t if isinstance(t, str) else "".join(x if isinstance(x, str) else x.get("text", "") for x in t)


@pytest.fixture(scope="module")
def update_seeds() -> list[bytes]:
    """The export's messages as the webhook receives them: channel posts, edits and replies of Bot API Updates."""
    out = []
    for i, m in enumerate(_export_messages()):
        msg: dict[str, Any] = {
            "message_id": m["id"],
            "date": int(m["date_unixtime"]),
            "chat": {"id": CHAT, "type": "channel", "title": "VIP Crypto Signals", "username": "vipsignals"},
            "text": _text(m),
        }
        if "reply_to_message_id" in m:
            msg["reply_to_message"] = {
                "message_id": m["reply_to_message_id"],
                "date": int(m["date_unixtime"]) - 60,
                "chat": msg["chat"],
            }
        out.append(json.dumps({"update_id": 1000 + i, "channel_post": msg}).encode())
        if "edited_unixtime" in m:
            out.append(
                json.dumps(
                    {"update_id": 2000 + i, "edited_channel_post": {**msg, "edit_date": int(m["edited_unixtime"])}}
                ).encode()
            )
    return out


@pytest.fixture(scope="module")
def signal_seeds(update_seeds) -> list[bytes]:
    state: dict = {}
    out = []
    for raw in update_seeds:
        res = ingest_message(inbound_from_update(decode(raw, TelegramUpdate)), trust=0.8, get=state.get)
        state.update(res.writes)
        if res.signal is not None:
            out.append(encode(res.signal))
    assert len(out) >= 3
    return out


def _command(i: int, action: str, scope: str = "account:default", **params: Any) -> ControlCommand:
    return sign(
        ControlCommand(
            id=f"cmd-fuzz-{i}",
            issuer="ops",
            scope=scope,
            action=action,
            parameters=params,
            reason="fuzz seed",
            ts=1_700_000_000_000_000_000 + i,
        ),
        KEY,
    )


@pytest.fixture(scope="module")
def command_seeds() -> list[ControlCommand]:
    return [
        _command(0, "halt"),
        _command(1, "reduce_only"),
        _command(2, "resume"),
        _command(3, "set_limit", name="max_leverage", value=1.5),
        _command(4, "set_limit", name="max_portfolio_var", value=0.02),
        _command(5, "disable_strategy", scope="strategy:ema_trend"),
        _command(6, "enable_strategy", scope="strategy:ema_trend"),
        _command(7, "pin_model", version="lgbm-0001"),
    ]


# -- the decoders ----------------------------------------------------------------------------------------------------
def test_tick_decoders(tick_seeds):
    Fuzz("decode(Tick)", _roundtrip(Tick), (DecodeError,)).run(tick_seeds, CASES, 1).check()

    def batch(data: bytes) -> str:  # a poll: the mutated payload among good ones, a None and an empty value
        raws = [tick_seeds[0], data, None, b"", tick_seeds[1]]
        good, bad = decode_many(raws, Tick)
        assert len(good) + len(bad) == len(raws) and len(good) >= 2
        assert all(isinstance(e, DecodeError) and e.reason for _, e in bad)
        return f"{len(good)} good"

    Fuzz("decode_many(Tick)", batch, ()).run(tick_seeds, CASES, 2).check_all_ok()


class _Msg:
    """A received Kafka message as confluent-kafka hands it over (value, key, timestamp, coordinates)."""

    def __init__(self, value: bytes | None, key: bytes | None, ts_ms: int, offset: int) -> None:
        self._v, self._k, self._ts, self._o = value, key, ts_ms, offset

    def value(self) -> bytes | None:
        return self._v

    def key(self) -> bytes | None:
        return self._k

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ts)

    def topic(self) -> str:
        return "ticks"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._o


def test_kafka_source_decode_messages(tick_seeds):
    rng = random.Random(3)
    stamps = [0, -1, 1_700_000_000_000, 2**62, 4_102_444_800_000]

    def fn(data: bytes) -> str:
        key = data[: rng.randint(0, 80)] if rng.random() < 0.7 else None
        msgs = [
            _Msg(tick_seeds[2], b"BTC-USD", 1_700_000_000_000, 0),
            _Msg(data, key, rng.choice(stamps), 1),
            _Msg(None, None, rng.choice(stamps), 2),
        ]
        events, dead = decode_messages(msgs, Tick, max_bytes=64 * 1024)
        assert len(events) + len(dead) == len(msgs)  # nothing lost, nothing invented
        for d in dead:
            assert d.error and msgspec.json.decode(encode(d), type=DeadLetter) == d  # a valid dead letter
        return f"{len(events)} events"

    Fuzz("decode_messages(Tick)", fn, ()).run(tick_seeds, CASES, 4).check_all_ok()


def test_signal_decoder(signal_seeds):
    Fuzz("decode(Signal)", _roundtrip(Signal), (DecodeError,)).run(signal_seeds, CASES, 5).check()


def test_telegram_webhook_body_through_the_whole_ingest_path(update_seeds):
    state: dict[str, Any] = {}

    def fn(data: bytes) -> str:
        update = decode(data, TelegramUpdate, max_bytes=1 << 20)
        inbound = inbound_from_update(update)
        if inbound is None:
            return "unsupported_update"
        out = ingest_message(inbound, trust=0.8, get=state.get)
        if len(state) < 5000:
            state.update(out.writes)
        if out.status == "signal":
            assert out.signal is not None and decode(encode(out.signal), Signal) == out.signal
        elif out.status == "rejected":
            assert out.reason
        return out.status

    f = Fuzz("Telegram update -> ingest", fn, (DecodeError,)).run(update_seeds, CASES, 6)
    f.check()
    assert f.outcomes["signal"] > 0


def test_telegram_text_parser(update_seeds):
    texts = [_text(m).encode() for m in _export_messages() if _text(m)]

    def fn(data: bytes) -> str:
        res = parse_message(data.decode("utf-8", "replace"))
        assert isinstance(res, (SignalDraft, LifecycleUpdate, Rejection)), res
        return f"rejection:{res.reason}" if isinstance(res, Rejection) else type(res).__name__

    f = Fuzz("parse_message", fn, ()).run(texts, CASES, 7)
    f.check_all_ok()
    assert f.outcomes.get("SignalDraft", 0) > 0 and len(f.outcomes) > 2, dict(f.outcomes)


def test_control_commands_never_forged_by_mutation(command_seeds):
    keys = {"default": KEY}
    originals = {canonical_bytes(c) for c in command_seeds}
    state = ControlState()

    def fn(data: bytes) -> str:
        cmd = decode(data, ControlCommand)
        verdict = verify(cmd, keys)
        if not verdict.ok:
            assert verdict.reason in ("unsigned", "unknown_key", "bad_signature")
            return f"refused:{verdict.reason}"
        # the only commands that verify are the signed originals (JSON spelling may differ, the content may not)
        assert canonical_bytes(cmd) in originals, cmd
        return f"applied:{state.apply(cmd).status}"

    f = Fuzz("control command", fn, (DecodeError,)).run([encode(c) for c in command_seeds], CASES, 8)
    f.check()
    assert any(k.startswith("refused:bad_signature") for k in f.outcomes), dict(f.outcomes)


def test_execution_reports_and_alerts():
    reports = [
        ExecutionReport(
            id=f"paper:default:{i}",
            venue="paper",
            kind=k,
            seq=i,
            client_order_id=f"ord-{i}",
            symbol="BTC-USD",
            side="buy",
            order_qty=0.5,
            last_qty=0.5 if k == "fill" else 0.0,
            last_price=27000.5 if k == "fill" else None,
            cum_qty=0.5 if k == "fill" else 0.0,
            ts=1_700_000_000_000_000_000 + i,
        )
        for i, k in enumerate(("ack", "fill", "cancel", "reject"))
    ]
    Fuzz("decode(ExecutionReport)", _roundtrip(ExecutionReport), (DecodeError,)).run(
        [encode(r) for r in reports], CASES, 9
    ).check()
    alerts = [
        Alert(
            id=f"al-{i}",
            severity=s,
            kind=k,
            message="drawdown 12% on BTC-USD",
            labels={"symbol": "BTC-USD"},
            dedupe_key=f"k-{i}",
            ts=1_700_000_000_000_000_000,
        )
        for i, (s, k) in enumerate(
            (("critical", "risk.kill_switch"), ("warning", "model_drift"), ("info", "sink_circuit_closed"))
        )
    ]
    Fuzz("decode(Alert)", _roundtrip(Alert), (DecodeError,)).run([encode(a) for a in alerts], CASES, 10).check()


def test_operator_api_request_bodies():
    from pydantic import ValidationError

    from schemas.api import ModeRequest, SetLimitRequest, StrategyRequest

    for i, (model, seeds) in enumerate(
        (
            (ModeRequest, [b'{"reason": "desk closed for the night"}', b'{"reason": "x", "account": "default"}']),
            (
                SetLimitRequest,
                [
                    b'{"name": "max_leverage", "value": 1.5, "reason": "risk review"}',
                    b'{"name": "max_portfolio_var", "value": 0.02, "reason": "x"}',
                ],
            ),
            (StrategyRequest, [b'{"reason": "underperforming"}']),
        )
    ):

        def fn(data: bytes, model: Any = model) -> str:
            model.model_validate_json(data)
            return "ok"

        Fuzz(f"API {model.__name__}", fn, (ValidationError,)).run(seeds, CASES, 20 + i).check()


def _check_all_ok(self: Fuzz) -> None:
    """For the never-raising stages: no crash, and every case counted."""
    if self.crashes:
        data, tb = self.crashes[0]
        raise AssertionError(
            f"{self.name}: {len(self.crashes)} crashes in {self.cases} cases; first input {data[:300]!r}\n{tb}"
        )
    assert self.cases >= CASES, (self.name, self.cases)


Fuzz.check_all_ok = _check_all_ok  # type: ignore[attr-defined]


# -- hypothesis: structure-aware documents ---------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _documents(event_type: type) -> st.SearchStrategy[bytes]:
    fields = [f.encode_name for f in msgspec.structs.fields(event_type)] + ["event", "schema_version", "extra"]
    docs = st.dictionaries(st.sampled_from(fields), JSON, max_size=len(fields))
    return docs.map(lambda d: json.dumps(d, allow_nan=True).encode()) | st.binary(max_size=200)


@pytest.mark.parametrize(
    "event_type", [Tick, Signal, TelegramUpdate, ControlCommand, ExecutionReport, Alert], ids=lambda t: t.__name__
)
def test_hypothesis_documents_never_crash_a_decoder(event_type):
    seen: Counter[str] = Counter()

    @settings(
        max_examples=HYPOTHESIS_CASES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(_documents(event_type))
    def run(data: bytes) -> None:
        try:
            ev = decode(data, event_type)
        except DecodeError as exc:
            assert exc.reason
            seen["rejected"] += 1
            return
        assert decode(encode(ev), event_type) == ev
        seen["ok"] += 1

    run()
    assert sum(seen.values()) >= HYPOTHESIS_CASES * 0.9, seen
