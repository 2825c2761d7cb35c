"""The signal parser's channel corpus (issue 17, item 7): ``tests/support/data/signal_corpus/*.yaml``, one file per channel
style, each message with its expected parse (``operators.signals.summarize``) or rejection reason; follow-ups and
edits name the message they refer to (``ref``) and carry the expected ingest outcome (``outcome``).

A case passes *exactly* when the whole summarised parse equals the expectation (floats with ``==``) and, for a
follow-up or an edit, the ingest of the original and then of the follow-up (a reply to it) or of the edit (same
message id, later ``edit_date``) gives the expected ``Signal`` fields, the id, ``ref_id`` and ``version``.

Run ``.venv/bin/python -m pytest -q -s tests/unit/operators/signals/test_signal_corpus.py`` to see the pass rate and the failure table.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml

from operators.signals import REASON_CODES, Rejection, parse_message, summarize
from operators.signals.convert import signal_id
from operators.signals.lifecycle_state import InboundMessage, IngestOutcome, ingest_message
from tests.support import TEST_DATA

CORPUS_DIR = TEST_DATA / "signal_corpus"
PASS_RATE = 0.98
CHAT = -1009990001
T0 = 1_700_000_000
ORIGINAL_ID, REPLY_ID = 100, 101
CATEGORIES = {"signal", "lifecycle", "edit", "rejection", "chatter"}
OUTCOME_KEYS = {"status", "reason", "kind", "symbol", "side", "stop", "close_fraction", "version"}


def load_corpus() -> list[dict[str, Any]]:
    """Every case of every style file, in file order, with its ``style`` added."""
    cases: list[dict[str, Any]] = []
    for path in sorted(CORPUS_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            cases.append(dict(case, style=doc["style"], file=path.name))
    return cases


CASES = load_corpus()
BY_ID = {c["id"]: c for c in CASES}


def _apply(state: dict[str, Any], out: IngestOutcome) -> None:
    for key, value in out.writes:
        state[key] = value


def _outcome(out: IngestOutcome) -> dict[str, Any]:
    if out.signal is None:
        return {"status": out.status, "reason": out.reason}
    s = out.signal
    return {
        "status": out.status,
        "kind": s.kind,
        "symbol": s.symbol,
        "side": s.side,
        "stop": s.stop,
        "close_fraction": s.close_fraction,
        "version": s.version,
        "id": s.id,
        "ref_id": s.ref_id,
    }


def ingest_follow_up(case: dict[str, Any]) -> tuple[IngestOutcome, IngestOutcome]:
    """Ingest the referred-to original, then the follow-up (a reply) or the edit; both outcomes."""
    state: dict[str, Any] = {}
    original = InboundMessage(chat_id=CHAT, message_id=ORIGINAL_ID, date_s=T0, text=BY_ID[case["ref"]]["text"])
    first = ingest_message(original, trust=0.7, get=state.get)
    _apply(state, first)
    if case["mode"] == "reply":
        msg = InboundMessage(
            chat_id=CHAT, message_id=REPLY_ID, date_s=T0 + 60, text=case["text"], reply_to_message_id=ORIGINAL_ID
        )
    else:
        msg = InboundMessage(chat_id=CHAT, message_id=ORIGINAL_ID, date_s=T0, edit_date_s=T0 + 120, text=case["text"])
    return first, ingest_message(msg, trust=0.7, get=state.get)


def expected_outcome(case: dict[str, Any]) -> dict[str, Any]:
    """The written ``outcome`` plus what the mode implies: a reply that becomes a follow-up has its own id and
    points at the original; an edit keeps the original's id."""
    want = dict(case["outcome"])
    if want.get("status") == "signal":
        if case["mode"] == "reply":
            want["id"] = signal_id(CHAT, REPLY_ID)
            if want.get("kind") != "open":
                want["ref_id"] = signal_id(CHAT, ORIGINAL_ID)
        else:
            want["id"] = signal_id(CHAT, ORIGINAL_ID)
    return want


def check_case(case: dict[str, Any]) -> list[str]:
    """Why the case does not pass exactly ([] when it does)."""
    problems: list[str] = []
    result = parse_message(case["text"])
    got = summarize(result)
    if got != case["expect"]:
        diff = {k: got.get(k) for k in sorted(set(got) | set(case["expect"])) if got.get(k) != case["expect"].get(k)}
        problems.append(f"parse differs {diff}" + (f" ({result.message})" if isinstance(result, Rejection) else ""))
    if "ref" in case:
        first, out = ingest_follow_up(case)
        if first.status != "signal":
            problems.append(f"original {case['ref']} not ingested: {first.reason} {first.detail}")
        actual = _outcome(out)
        want = expected_outcome(case)
        bad = {k: actual.get(k) for k in want if actual.get(k) != want[k]}
        if bad:
            problems.append(f"ingest differs {bad}" + (f" ({out.detail})" if out.detail else ""))
    return problems


def corpus_report(cases: list[dict[str, Any]]) -> tuple[int, list[tuple[dict[str, Any], list[str]]]]:
    """``(passed, failures)``; failures are ``(case, problems)``."""
    failures = [(c, p) for c in cases if (p := check_case(c))]
    return len(cases) - len(failures), failures


def failure_table(failures: list[tuple[dict[str, Any], list[str]]]) -> str:
    lines = [f"{'id':<14} {'style':<20} {'expected':<22} problem"]
    for case, problems in failures:
        exp = case["expect"]
        what = exp.get("reason") or exp.get("action") or exp.get("entry_type", "signal")
        lines.append(
            f"{case['id']:<14} {case['style']:<20} {exp['type'][:9] + ':' + str(what):<22} " + "; ".join(problems)
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------


def test_corpus_shape():
    assert len(CASES) >= 300
    assert len(BY_ID) == len(CASES), "duplicate ids"
    assert len({c["text"] for c in CASES}) == len(CASES), "duplicate texts"
    styles = Counter(c["style"] for c in CASES)
    assert sum(1 for n in styles.values() if n >= 15) >= 15 and min(styles.values()) >= 10, styles
    for c in CASES:
        assert c["category"] in CATEGORIES, c["id"]
        assert c["expect"]["type"] in ("signal", "lifecycle", "rejection"), c["id"]
        if c["expect"]["type"] == "rejection":
            assert c["expect"]["reason"] in REASON_CODES, c["id"]
        if "ref" in c:
            assert c["mode"] in ("reply", "edit") and c["ref"] in BY_ID, c["id"]
            assert BY_ID[c["ref"]]["style"] == c["style"] and "ref" not in BY_ID[c["ref"]], c["id"]
            assert set(c["outcome"]) <= OUTCOME_KEYS and "status" in c["outcome"], c["id"]
        else:
            assert "mode" not in c and "outcome" not in c, c["id"]
    kinds = Counter(c["category"] for c in CASES)
    assert kinds["signal"] >= 150 and kinds["lifecycle"] >= 60 and kinds["edit"] >= 15, kinds
    assert kinds["rejection"] + kinds["chatter"] >= 50, kinds
    reasons = {c["expect"]["reason"] for c in CASES if c["expect"]["type"] == "rejection"}
    assert {
        "no_signal",
        "no_stop",
        "no_symbol",
        "no_side",
        "no_entry",
        "ambiguous",
        "stop_wrong_side",
        "targets_wrong_side",
    } <= reasons
    entry_types = {c["expect"].get("entry_type", "limit") for c in CASES if c["expect"]["type"] == "signal"}
    assert entry_types == {"limit", "zone", "market", "below", "above"}
    # every style has rejections, and every style but the promotional one new signals and follow-ups
    for style in styles:
        cats = {c["category"] for c in CASES if c["style"] == style}
        assert cats & {"rejection", "chatter"}, style
        if style != "promo_results":
            assert {"signal", "lifecycle"} <= cats, style


def test_corpus_pass_rate():
    passed, failures = corpus_report(CASES)
    rate = passed / len(CASES)
    styles = len({c["style"] for c in CASES})
    print(f"\nsignal corpus: {passed}/{len(CASES)} exact = {rate:.2%} over {styles} styles; {len(failures)} failures")
    if failures:
        print(failure_table(failures))
    assert rate >= PASS_RATE, f"{passed}/{len(CASES)} = {rate:.2%} < {PASS_RATE:.0%}\n" + failure_table(failures)


def test_report_counts_a_wrong_expectation():
    """The scoring is not vacuous: a changed expectation, a wrong reason or a wrong ingest outcome fails."""
    signal = next(c for c in CASES if c["expect"]["type"] == "signal" and not check_case(c))
    wrong_stop = dict(signal, expect=dict(signal["expect"], stop=(signal["expect"].get("stop") or 1.0) * 1.01))
    reject = next(c for c in CASES if c["expect"]["type"] == "rejection" and not check_case(c))
    wrong_reason = dict(
        reject,
        expect=dict(reject["expect"], reason="no_stop" if reject["expect"]["reason"] != "no_stop" else "no_side"),
    )
    follow = next(c for c in CASES if c.get("mode") == "reply" and not check_case(c))
    wrong_kind = dict(follow, outcome=dict(follow["outcome"], kind="open"))
    passed, failures = corpus_report([signal, wrong_stop, reject, wrong_reason, follow, wrong_kind])
    assert passed == 3 and [c["id"] for c, _ in failures] == [signal["id"], reject["id"], follow["id"]]


def test_parser_is_deterministic_on_the_corpus():
    first = [parse_message(c["text"]) for c in CASES]
    second = [parse_message(c["text"]) for c in reversed(CASES)][::-1]
    assert first == second  # whole results, the human rejection text included
    for c in CASES:
        if "ref" in c:
            a, b = ingest_follow_up(c), ingest_follow_up(c)
            assert (_outcome(a[0]), _outcome(a[1]), a[1].writes) == (_outcome(b[0]), _outcome(b[1]), b[1].writes)


@pytest.mark.parametrize("case", list(CASES), ids=[c["id"] for c in CASES])
def test_every_rejection_is_explained(case):
    r = parse_message(case["text"])
    if isinstance(r, Rejection):
        assert r.reason in REASON_CODES and r.message.strip(), (case["id"], r)
