"""Everything one API process holds: settings, the database pool, the rate limiter, the key hasher, the key rows
(cached while PostgreSQL's key-change notifications are heard: :meth:`ApiContext.get_key`), the control publisher
(opened at the first command) and the cached control state and reads. ``audit()`` writes one row and never raises:
a failed audit write is logged (without secrets) and counted."""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread

from connectors.control import read_control
from connectors.postgres.api import ApiDatabase, KeyChangeListener, KeyRow
from connectors.ratelimit import RateLimiter
from flows.api.settings import ApiSettings
from flows.cli_control import status_data
from flows.settings import Settings
from operators.api.access import Tier
from operators.api.audit import api_audit_event
from operators.api.keys import KeyHasher, KeyRowCache, VerifiedCache
from operators.control.signing import keyring
from schemas.events import AuditEvent
from schemas.time import iso

__all__ = ["ApiContext"]

log = logging.getLogger("levibot.api")


@dataclass
class ApiContext:
    settings: Settings
    api: ApiSettings
    db: ApiDatabase
    limiter: RateLimiter
    hasher: KeyHasher = field(default_factory=KeyHasher)
    verified: VerifiedCache = field(default_factory=lambda: VerifiedCache(secrets.token_bytes(32)))
    publisher_factory: Callable[[], Any] | None = None
    clock_ns: Callable[[], int] = time.time_ns
    audit_failures: int = 0
    _publisher: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _refreshing: threading.Lock = field(default_factory=threading.Lock)
    _refreshing_reads: threading.Lock = field(default_factory=threading.Lock)
    _control: tuple[float, dict[str, Any]] | None = None
    _drift: tuple[float, dict[str, Any]] | None = None
    _calibration: dict[str, dict[str, Any]] = field(default_factory=dict)
    _reads: dict[Any, tuple[float, Any]] = field(default_factory=dict)
    _verifying: dict[str, threading.Lock] = field(default_factory=dict)
    key_listener: KeyChangeListener | None = None

    def __post_init__(self) -> None:
        self._tiers = self.api.tier_map()
        #: key rows between requests, served only while ``key_listener`` hears PostgreSQL's change notifications
        self.keys = KeyRowCache(ttl_s=self.api.key_cache_s)
        #: signs console sessions and CSRF tokens (a random one per process without LEVIBOT_API_SESSION_SECRET)
        self.session_secret: bytes = (
            self.api.session_secret.encode() if self.api.session_secret else secrets.token_bytes(32)
        )

    @property
    def tiers(self) -> dict[str, Tier]:
        return self._tiers

    def tier(self, name: str) -> Tier | None:
        return self._tiers.get(name)

    def start(self) -> None:
        """Open the database pool and start listening to key changes (the key cache works only from then on)."""
        self.db.open()
        if self.api.key_cache_s > 0 and self.key_listener is None:
            self.key_listener = KeyChangeListener(self.db.dsn, self.keys).start()
            self.key_listener.listening.wait(5.0)

    def get_key(self, key_id: str) -> KeyRow | None:
        """The row of ``key_id``: from the key cache unless a key-change notification is on its way in, else from
        PostgreSQL (then cached unless a key change was notified meanwhile). Unknown keys are never cached."""
        row = self.keys.get(key_id)
        if row is not None and not (self.key_listener is not None and self.key_listener.pending()):
            return row
        gen = self.keys.generation()
        row = self.db.get_key(key_id)
        if row is not None:
            self.keys.put(key_id, row, gen)
        return row

    def verify_lock(self, key_id: str) -> threading.Lock:
        """One lock per key id: concurrent first requests of a key wait for one Argon2 verification instead of
        each computing it (a restart under load would otherwise run hundreds at once)."""
        with self._lock:
            lk = self._verifying.get(key_id)
            if lk is None:
                if len(self._verifying) > 4096:
                    self._verifying.clear()
                lk = self._verifying[key_id] = threading.Lock()
            return lk

    def new_request_id(self) -> str:
        return f"req-{uuid.uuid4().hex}"

    def audit(self, **kw: Any) -> bool:
        """Write :func:`operators.api.audit.api_audit_event` of ``kw`` (``ts`` defaults to now); False if not stored."""
        kw.setdefault("ts", self.clock_ns())
        try:
            ev: AuditEvent = api_audit_event(**kw)
            self.db.write_audit(ev)
            return True
        except Exception as exc:  # the answer to the client stands; the failure is logged and counted
            self.audit_failures += 1
            log.error(
                "audit write failed for %s %s (%s): %s",
                kw.get("route"),
                kw.get("result"),
                kw.get("request_id"),
                type(exc).__name__,
            )
            return False

    def publisher(self) -> Any:
        with self._lock:
            if self._publisher is None:
                if self.publisher_factory is not None:
                    self._publisher = self.publisher_factory()
                else:
                    from connectors.control import ControlPublisher

                    self._publisher = ControlPublisher(
                        self.settings.kafka_bootstrap, self.settings.topic("control"), timeout_s=10.0
                    )
            return self._publisher

    def control_state(self) -> dict[str, Any]:
        """The folded control topic (``levibot control status --json``), cached ``control_cache_s`` seconds."""
        now = time.monotonic()
        with self._lock:
            if self._control is not None and now - self._control[0] < self.api.control_cache_s:
                return self._control[1]
            stale = self._control
        # one thread reads the topic; the others answer with the previous state meanwhile (no stampede)
        if not self._refreshing.acquire(blocking=stale is None):
            return stale[1]  # type: ignore[index]
        try:
            data = self._read_control()
            with self._lock:
                self._control = (time.monotonic(), data)
        finally:
            self._refreshing.release()
        return data

    async def control_state_async(self) -> dict[str, Any]:
        """:meth:`control_state` without leaving the event loop while the cached state is fresh, or stale while
        another thread refreshes it; otherwise the refresh runs in a worker thread."""
        with self._lock:
            hit = self._control
        if hit is not None and (time.monotonic() - hit[0] < self.api.control_cache_s or self._refreshing.locked()):
            return hit[1]
        return await to_thread.run_sync(self.control_state)

    def invalidate_control(self) -> None:
        with self._lock:
            self._control = None

    def _read_control(self) -> dict[str, Any]:
        s = self.settings
        try:
            keys = keyring(s.control_key, s.control_key_id, s.control_verify_keys)
        except ValueError:
            return {"available": False, "error": "bad control key configuration"}
        if not keys:
            return {
                "available": False,
                "error": "no control verification key (LEVIBOT_CONTROL_KEY or LEVIBOT_CONTROL_VERIFY_KEYS)",
            }
        try:
            view = read_control(s.kafka_bootstrap, s.topic("control"), keys, timeout_s=5.0)
        except Exception as exc:  # broker down, topic missing
            return {"available": False, "error": f"control topic unreadable: {type(exc).__name__}"}
        d = status_data(view)
        return {
            "available": True,
            "modes": d["modes"],
            "limits": d["limits"],
            "strategies": d["strategies"],
            "disabled_strategies": d["disabled_strategies"],
            "pinned_model": d["pinned_model"],
            "counts": d["counts"],
            "read_at": iso(self.clock_ns()),
        }

    def cached_read(self, key: Any, fn: Callable[[], Any]) -> Any:
        """``fn()``, reused for ``read_cache_s`` seconds per ``key`` (0: always ``fn()``)."""
        ttl = self.api.read_cache_s
        if ttl <= 0:
            return fn()
        now = time.monotonic()
        with self._lock:
            hit = self._reads.get(key)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        # one thread refreshes; the others answer with the previous value meanwhile (no stampede)
        if not self._refreshing_reads.acquire(blocking=hit is None):
            return hit[1]  # type: ignore[index]
        try:
            value = fn()
            with self._lock:
                if len(self._reads) > 256:
                    self._reads.clear()
                self._reads[key] = (time.monotonic(), value)
        finally:
            self._refreshing_reads.release()
        return value

    async def cached_read_async(self, key: Any, fn: Callable[[], Any]) -> Any:
        """:meth:`cached_read` for ``async`` routes: a fresh value, or a stale one while another thread refreshes
        it, is answered from the event loop; a read of PostgreSQL runs in a worker thread."""
        if self.api.read_cache_s > 0:
            with self._lock:
                hit = self._reads.get(key)
            if hit is not None and (
                time.monotonic() - hit[0] < self.api.read_cache_s or self._refreshing_reads.locked()
            ):
                return hit[1]
        return await to_thread.run_sync(self.cached_read, key, fn)

    # -- models ----------------------------------------------------------------------------------------------------

    def registry(self) -> Any:
        """The model registry under ``<LEVIBOT_VAR>/models`` (read only here)."""
        from connectors.model_registry import ModelRegistry

        return ModelRegistry(self.settings.var_dir / "models")

    def calibration(self, version: str) -> dict[str, Any]:
        """:func:`operators.api.models.calibration_view` of a registered version (KeyError when unknown), cached per
        version (a version's file never changes: its content hash is checked on load)."""
        from operators.api.models import calibration_view

        with self._lock:
            hit = self._calibration.get(version)
        if hit is not None:
            return hit
        reg = self.registry()
        meta = reg.get(version)
        view = calibration_view(version, meta, reg.load(version))
        with self._lock:
            if len(self._calibration) >= 16:
                self._calibration.pop(next(iter(self._calibration)))
            self._calibration[version] = view
        return view

    def drift(self) -> dict[str, Any]:
        """Drift alerts from the tail of the alerts topic (``drift_tail`` per partition), newest first, cached
        ``control_cache_s`` seconds."""
        now = time.monotonic()
        with self._lock:
            if self._drift is not None and now - self._drift[0] < max(self.api.control_cache_s, 1.0):
                return self._drift[1]
        from connectors.topic_tail import tail
        from operators.api.models import drift_alerts

        try:
            msgs = tail(
                self.settings.kafka_bootstrap, self.settings.topic("alerts"), self.api.drift_tail, timeout_s=5.0
            )
            data = {"available": True, "error": "", "items": drift_alerts(m.value() for m in msgs)}
        except Exception as exc:  # broker down, topic missing
            data = {"available": False, "error": f"alerts topic unreadable: {type(exc).__name__}", "items": []}
        with self._lock:
            self._drift = (time.monotonic(), data)
        return data

    def close(self) -> None:
        if self.key_listener is not None:
            self.key_listener.stop()
            self.key_listener = None
        with self._lock:
            if self._publisher is not None:
                try:
                    self._publisher.close()
                except Exception:
                    pass
                self._publisher = None
        self.db.close()
