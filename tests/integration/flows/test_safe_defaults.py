"""Safe by default (issue 15 item 5), on the real processes:

* every live process refuses to start without the secrets it needs, with a message naming the variables: the live
  flow (``LEVIBOT_CONTROL_KEY``), the Telegram webhook receiver (``LEVIBOT_TELEGRAM_SECRET_TOKEN``), the alert
  dispatcher (each destination's HMAC key, e.g. ``LEVIBOT_ALERT_WEBHOOK_SECRET``); it stops before it connects
  anywhere (its broker address is a listener that counts connections: none arrives), and with the secret it goes
  on to connect;
* the /metrics endpoint answers GET only and never reads a request body;
* a full live run (flow, paper venue, signal ingest, alert dispatcher, operator commands, a forged command, a
  Telegram update) uses every secret it was given (the webhook accepts the token, the alert receiver verifies the
  HMAC signature, the flow applies the signed command) and none of them appears in any process's log, at DEBUG for
  the flow, nor on a /metrics page; every HTTP server there refuses an oversized body.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from connectors import metrics as cm
from connectors.webhooks import verify_signature
from schemas.events import AuditEvent
from tests.support import wait_for
from tests.support.flowproc import (
    BAR_ARGS,
    REPO,
    FlowProc,
    create_topics,
    drop_topics,
    flow_env,
    free_ports,
    new_prefix,
    read_events,
    run_ok,
)
from tests.support.http import Receiver


def _levibot(args: list[str], env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class _Listener:
    """A TCP port on 127.0.0.1 that accepts and counts connections (closing each at once): a broker address that
    shows whether a process tried to connect."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener():
    lst = _Listener()
    yield lst
    lst.close()


def _bare_env(tmp_path: Path, broker_port: int, **extra: str) -> dict[str, str]:
    """An environment with no LeviBot secret, pointed at ``broker_port`` for its broker."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEVIBOT_", "T_KEY"))}
    env.update(
        LEVIBOT_KAFKA_BOOTSTRAP=f"127.0.0.1:{broker_port}",
        LEVIBOT_VAR=str(tmp_path / "var"),
        LEVIBOT_METRICS_PORT="0",
        **extra,
    )
    return env


@pytest.mark.parametrize(
    "args, extra, variable",
    [
        (["run", "--live", "--stores", "none"], {}, "LEVIBOT_CONTROL_KEY"),
        (["run", "--live", "--stores", "none"], {"LEVIBOT_CONTROL_KEY": "   "}, "LEVIBOT_CONTROL_KEY"),
        (["run", "--live", "--stores", "none"], {"LEVIBOT_CONTROL_KEY": "short"}, "LEVIBOT_CONTROL_KEY"),
        (["ingest-signals"], {}, "LEVIBOT_TELEGRAM_SECRET_TOKEN"),
        (
            ["dispatch-alerts"],
            {"LEVIBOT_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/alerts"},
            "LEVIBOT_ALERT_WEBHOOK_SECRET",
        ),
        (
            ["dispatch-alerts"],
            {
                "LEVIBOT_ALERT_ROUTES": json.dumps(
                    {"destinations": [{"name": "ops", "url": "http://127.0.0.1:9/x", "key_env": "T_KEY_OPS"}]}
                )
            },
            "T_KEY_OPS",
        ),
    ],
    ids=[
        "flow-no-key",
        "flow-blank-key",
        "flow-short-key",
        "ingest-no-token",
        "dispatch-no-hmac",
        "dispatch-route-key",
    ],
)
def test_live_processes_refuse_to_start_without_their_secrets(tmp_path, listener, args, extra, variable):
    res = _levibot(args, _bare_env(tmp_path, listener.port, **extra), timeout_s=240)
    assert res.returncode == 2, (res.returncode, res.stdout[-2000:], res.stderr[-3000:])
    assert "refuses to start without its secrets" in res.stderr and variable in res.stderr, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    # it stopped before connecting anywhere, and before writing anything
    assert listener.connections == 0
    assert not (tmp_path / "var" / "spool").exists()


def test_the_secrets_a_live_flow_is_given_are_accepted(tmp_path, listener):
    """The same check passes with the secret set: the flow goes on and connects to its broker."""
    env = _bare_env(tmp_path, listener.port, LEVIBOT_CONTROL_KEY="a-sixteen-byte-or-longer-control-key")
    log = tmp_path / "flow.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "run", "--live", "--stores", "none"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: listener.connections or proc.poll() is not None, 240, "a connection to the broker address")
        assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        proc.kill()
        proc.wait(30)


def _http(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        r = c.getresponse()
        r.read()
        return r.status
    except (ConnectionResetError, BrokenPipeError):
        return -1  # the server answered and closed before the body was sent: it did not read it either
    finally:
        c.close()


def test_metrics_endpoint_answers_get_only_and_reads_no_body():
    reg = CollectorRegistry()
    port = cm.start_metrics_server(free_ports(1)[0], addr="127.0.0.1", registry=reg)
    assert _http(port, "GET", "/metrics") == 200
    assert _http(port, "HEAD", "/metrics") == 405
    assert _http(port, "POST", "/metrics", b"x" * 100) == 405
    assert _http(port, "PUT", "/metrics", b"") == 405
    big = b"x" * (8 << 20)
    assert _http(port, "GET", "/metrics", big) in (413, -1)
    assert _http(port, "GET", "/metrics", iter([b"x" * 1024] * 4), chunked=True) in (413, -1)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert "levibot_process_info" in r.read().decode()  # and it still serves


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2):
        return True


def _wait_http(url: str, proc: FlowProc, timeout_s: float = 60) -> None:
    wait_for(lambda: _answers(url), timeout_s, f"{url} to answer", procs=[proc], retry_on=(OSError,), interval_s=0.3)


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (ConnectionResetError, BrokenPipeError, urllib.error.URLError):
        return -1


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
def test_a_full_live_run_logs_none_of_its_secrets(kafka_bootstrap, pg_dsn, tmp_path):
    secrets = {
        "LEVIBOT_CONTROL_KEY": "safe-control-" + uuid.uuid4().hex,
        "LEVIBOT_TELEGRAM_SECRET_TOKEN": "safe-telegram-" + uuid.uuid4().hex,
        "LEVIBOT_ALERT_WEBHOOK_SECRET": "safe-alert-hmac-" + uuid.uuid4().hex,
    }
    prefix = new_prefix("sd")
    m_port, ingest_port, dispatch_port = free_ports(3)
    receiver = Receiver()
    chat = -1001234567890
    env = flow_env(
        prefix=prefix,
        var=tmp_path / "var",
        LEVIBOT_PG_DSN=pg_dsn,
        **secrets,
        LEVIBOT_TELEGRAM_CHATS=f"{chat}:0.8",
        LEVIBOT_SIGNAL_WEB_PORT=str(ingest_port),
        LEVIBOT_TELEGRAM_MAX_BODY_BYTES=str(64 * 1024),
        LEVIBOT_ALERT_WEBHOOK_URL=receiver.url("/alerts"),
        LEVIBOT_ALERT_WEB_PORT=str(dispatch_port),
    )
    flow_envm = dict(env, LEVIBOT_METRICS_PORT=str(m_port))
    forged = dict(env, LEVIBOT_CONTROL_KEY="someone-else-entirely-" + uuid.uuid4().hex)
    procs: list[FlowProc] = []
    try:
        create_topics(kafka_bootstrap, prefix)
        ingest = FlowProc(["ingest-signals"], env, tmp_path / "ingest.log")
        dispatch = FlowProc(["dispatch-alerts"], env, tmp_path / "dispatch.log")
        venue = FlowProc(["paper-venue"], env, tmp_path / "venue.log")
        flow = FlowProc(
            ["--verbose", "run", "--live", "--venue", "paper", "--stores", "postgres", *BAR_ARGS],
            flow_envm,
            tmp_path / "flow.log",
        )
        procs += [ingest, dispatch, venue, flow]
        # the ticks of a live run (nothing here depends on their pace: 1,500 bars in ~7 s)
        run_ok(
            ["replay", "--max-bars", "1500", "--speed", "400000", "--no-progress"], env, tmp_path / "replay.log", 180
        )
        _wait_http(f"http://127.0.0.1:{ingest_port}/healthz", ingest)
        _wait_http(f"http://127.0.0.1:{dispatch_port}/healthz", dispatch)
        _wait_http(f"http://127.0.0.1:{m_port}/metrics", flow)

        # the webhook takes the token (and only it), and refuses an oversized body
        hook = f"http://127.0.0.1:{ingest_port}/telegram/webhook"
        upd = json.dumps(
            {
                "update_id": 1,
                "channel_post": {
                    "message_id": 7,
                    "date": 1_700_000_000,
                    "chat": {"id": chat, "type": "channel", "title": "VIP"},
                    "text": "#BTC/USDT LONG 10x\nEntry: 27000 - 27400\nTargets: 27800 - 28500\nSL: 26500",
                },
            }
        ).encode()
        token = {"X-Telegram-Bot-Api-Secret-Token": secrets["LEVIBOT_TELEGRAM_SECRET_TOKEN"]}
        assert _post(hook, upd, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}) == 401
        assert _post(hook, upd, token) == 200
        assert _post(hook, b"{" + b" " * (2 << 20) + b"}", token) in (413, -1)
        assert _post(f"http://127.0.0.1:{dispatch_port}/healthz", b"x" * (1 << 20)) in (413, 405, -1)
        assert _post(f"http://127.0.0.1:{m_port}/metrics", b"x" * (1 << 20)) in (405, -1)

        # a signed command is applied, a forged one refused: its alert reaches the receiver, signed with the HMAC key
        run_ok(["control", "reduce-only", "--reason", "safe defaults"], env, tmp_path / "reduce-only.log", 60)
        run_ok(["control", "resume", "--reason", "forged"], forged, tmp_path / "forged.log", 60)
        wait_for(lambda: receiver.requests, 120, "an alert delivered", procs=[flow, dispatch], interval_s=0.5)
        for _, headers, body in receiver.requests:
            verify_signature(body, headers, secrets["LEVIBOT_ALERT_WEBHOOK_SECRET"].encode())
        assert any(json.loads(b)["kind"] == "control.refused" for _, _, b in receiver.requests)
        audit = read_events(kafka_bootstrap, f"{prefix}audit", AuditEvent)
        assert any(a.action == "reduce_only" and a.result == "applied" for a in audit), audit
        with urllib.request.urlopen(f"http://127.0.0.1:{m_port}/metrics", timeout=5) as r:
            pages = [r.read().decode()]
        for port in (ingest_port, dispatch_port):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                pages.append(r.read().decode())
        for p in procs:
            p.proc.send_signal(signal.SIGTERM)
        flow.wait_ok(60)
    finally:
        for p in procs:
            p.kill()
        receiver.stop()
        drop_topics(kafka_bootstrap, [prefix])

    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    assert set(logs) == {f"{n}.log" for n in ("ingest", "dispatch", "venue", "flow", "replay", "reduce-only", "forged")}
    assert " DEBUG " in logs["flow.log"]
    for name, value in secrets.items():
        for log_name, text in logs.items():
            assert value not in text, f"{name} appears in {log_name}"
        for page in pages:
            assert value not in page, f"{name} appears on a /metrics page"
