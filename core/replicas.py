"""Read replicas: the reads a screen or an API listing makes may come from a PostgreSQL standby.

When DATABASE_REPLICA_URLS names standbys (config/settings.py makes them the aliases
replica1, replica2, ...), ReplicaRouter sends reads of the data the table, contact pages,
inbox, API and exports show (REPLICA_APPS) to a healthy standby, but only inside a read
scope, which ReplicaMiddleware opens for GET, HEAD and OPTIONS requests outside the widget.
Routing to a standby is opt-in for that reason: everything else reads the primary without
having to say so. That covers writes and the reads around them (POST and the other unsafe
methods, anything inside a transaction, the rest of a request once it has written), the
widget's identify and conversations (they write what they have just read), the task worker,
management commands and tests. Sessions, members, API keys, identity secrets, the shared
cache and rate limits are never read from a standby, so a sign-out, a role change or a
revoked key takes effect at once.

Read-your-writes. A request that wrote (an unsafe method answered below 400, or a safe one
whose handler wrote one of REPLICA_APPS' models) pins its actors, the signed-in member and
the API key it came with, in the shared cache. A pinned actor reads the primary for
DATABASE_REPLICA_PIN_SECONDS, and after that only from a standby that has replayed the
primary's WAL up to where it was at the write. A standby lagging longer than the pin lasts
therefore still never shows someone a page without their own change; the pin's entry lives
until any standby still judged healthy must have the write.

Health. Each process measures each standby at most once every CHECK_SECONDS, on a small
connection of its own with short timeouts: it must be in recovery, and its lag (an upper
bound, see ReplicaHealth.judge) within DATABASE_REPLICA_MAX_LAG_SECONDS. A standby that
cannot be reached is left alone for DOWN_SECONDS. A request that read a standby and failed
with a 5xx is answered again from the primary when the standby now fails its check, so a
standby going away is never an error page. Exports stream after the middleware returns; the
scope is re-entered around each chunk so their lazy reads route like the rest.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import math
import random
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger("rapport.replicas")

# The apps whose reads may come from a standby: what the table, contact pages, inbox, API
# listings and exports show. Left out on purpose: auth, sessions and workspaces (members,
# roles, API keys, identity secrets: a change must hold at once), the shared cache and rate
# limits (the pins themselves live there), the task queue, visitor sessions and webhooks
# (endpoints and their secrets).
REPLICA_APPS = frozenset({"contacts", "attributes", "helpdesk", "transfers"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The widget's calls write what they have just read (identify, conversations).
PRIMARY_ONLY_PATHS = ("/widget/",)
# How long a process trusts a standby's verdict, and leaves an unreachable one alone.
CHECK_SECONDS = 1.0
DOWN_SECONDS = 5.0
# The health probe's limits: a standby that is slow to answer is as good as down.
CONNECT_TIMEOUT_SECONDS = 2
STATEMENT_TIMEOUT_MS = 2000
PIN_PREFIX = "replica-pin:"


def replica_aliases() -> list[str]:
    return list(getattr(settings, "DATABASE_REPLICAS", ()))


def parse_lsn(text: str) -> int:
    """A WAL position such as `16/B374D848` as a number that compares like the position."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


# --- The read scope ------------------------------------------------------------------------


@dataclass
class ReadScope:
    """One request's routing: whose it is, and the alias chosen at its first routed read."""

    actors: tuple[str, ...] = ()
    alias: str | None = None
    wrote: bool = False

    def read_alias(self) -> str:
        if self.wrote:
            return DEFAULT_DB_ALIAS
        if self.alias is None:
            self.alias = _choose(self.actors)
        return self.alias

    @property
    def used_replica(self) -> bool:
        return self.alias is not None and self.alias != DEFAULT_DB_ALIAS


_scope: contextvars.ContextVar[ReadScope | None] = contextvars.ContextVar(
    "rapport_read_scope", default=None
)


@contextmanager
def replica_reads(actors: Iterable[str] = ()) -> Iterator[ReadScope]:
    """Reads of REPLICA_APPS inside this block may come from a standby (the middleware's
    scope; also for code outside a request that knows its reads may lag)."""
    scope = ReadScope(actors=tuple(actors))
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def _in_transaction() -> bool:
    primary = connections[DEFAULT_DB_ALIAS]
    return primary.in_atomic_block or (primary.connection is not None and not primary.autocommit)


def _choose(actors: tuple[str, ...]) -> str:
    """A healthy standby that has this request's actors' writes, else the primary."""
    aliases = replica_aliases()
    if not aliases:
        return DEFAULT_DB_ALIAS
    needed = _pinned_position(actors)
    if needed is None:
        return DEFAULT_DB_ALIAS
    fitting = []
    for alias in aliases:
        verdict = health.verdict(alias)
        if verdict.healthy and verdict.replay_lsn >= needed:
            fitting.append(alias)
    return random.choice(fitting) if fitting else DEFAULT_DB_ALIAS


class ReplicaRouter:
    """Reads in a read scope, outside a transaction, of REPLICA_APPS: a standby; the rest and
    every write: the primary."""

    def db_for_read(self, model: type, **hints: Any) -> str:
        scope = _scope.get()
        if scope is None or model._meta.app_label not in REPLICA_APPS or _in_transaction():
            return DEFAULT_DB_ALIAS
        return scope.read_alias()

    def db_for_write(self, model: type, **hints: Any) -> str:
        # Always named: left to Django, an instance read from a standby would be saved there.
        scope = _scope.get()
        if scope is not None and model._meta.app_label in REPLICA_APPS:
            # The rest of the request reads what it wrote, and its actors are pinned.
            scope.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # every alias holds the same data

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db in replica_aliases() else None


# --- Read-your-writes pins -----------------------------------------------------------------


def request_actors(request) -> tuple[str, ...]:
    """Who a request speaks for: the signed-in member and the API key it carries (hashed;
    the key is checked by the API itself, a wrong one only names a pin that never exists)."""
    actors = []
    session = getattr(request, "session", None)
    user_id = session.get(SESSION_KEY) if session is not None else None
    if user_id:
        actors.append(f"user:{user_id}")
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and raw.strip():
        actors.append("key:" + hashlib.sha256(raw.strip().encode()).hexdigest()[:40])
    return tuple(actors)


def _pin_settings() -> tuple[float, float]:
    return (
        float(getattr(settings, "DATABASE_REPLICA_PIN_SECONDS", 5.0)),
        float(getattr(settings, "DATABASE_REPLICA_MAX_LAG_SECONDS", 10.0)),
    )


def _primary_position() -> int | None:
    """Where the primary's WAL ends now: past every commit made so far, ours included."""
    primary = connections[DEFAULT_DB_ALIAS]
    if primary.vendor != "postgresql":
        return None
    with primary.cursor() as cursor:
        # The insert position, not the flushed one: with synchronous_commit off a commit may
        # not be flushed yet, and a standby must have it all the same.
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        return parse_lsn(cursor.fetchone()[0])


def pin_actors(actors: Iterable[str]) -> None:
    """These actors just wrote: they read the primary until a standby has their writes."""
    keys = [PIN_PREFIX + actor for actor in actors]
    if not keys or not replica_aliases():
        return
    pin_seconds, max_lag = _pin_settings()
    # Kept until any standby still judged healthy must have replayed the write: one judged
    # at most two checks ago was at most max_lag behind then.
    timeout = math.ceil(pin_seconds + max_lag + 2 * CHECK_SECONDS) + 1
    try:
        value = {"until": time.time() + pin_seconds, "lsn": _primary_position()}
        caches["default"].set_many(dict.fromkeys(keys, value), timeout=timeout)
    except Exception:
        # The write itself succeeded: answering it with an error would invite a repeat.
        logger.warning("Could not record a read-your-writes pin", exc_info=True)


def _pinned_position(actors: tuple[str, ...]) -> int | None:
    """The WAL position a standby must have replayed to serve these actors (0: any), or
    None while one of them is pinned to the primary outright."""
    if not actors:
        return 0
    try:
        pins = caches["default"].get_many([PIN_PREFIX + actor for actor in actors])
    except Exception:
        logger.warning("Could not read read-your-writes pins; reading the primary", exc_info=True)
        return None
    needed = 0
    now = time.time()
    for pin in pins.values():
        if now < pin["until"]:
            return None
        needed = max(needed, pin["lsn"] or 0)
    return needed


# --- Health --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    primary_lsn: int
    replay_lsn: int | None
    # now() - pg_last_xact_replay_timestamp() on the standby; None before its first replay.
    replay_age_seconds: float | None
    in_recovery: bool
    # time.monotonic() when the primary's position was read, before the standby was asked.
    sampled_at: float


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str
    recheck_at: float  # time.monotonic()
    replay_lsn: int = 0
    lag_seconds: float | None = None


class ReplicaHealth:
    """Each standby's latest verdict in this process, measured at most every CHECK_SECONDS."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._verdicts: dict[str, Verdict] = {}
        self._caught_up_at: dict[str, float] = {}
        self._probes: dict[str, Any] = {}

    def verdict(self, alias: str) -> Verdict:
        current = self._verdicts.get(alias)
        now = time.monotonic()
        if current is not None and now < current.recheck_at:
            return current
        lock = self._lock(alias)
        if not lock.acquire(blocking=False):
            # Another thread is measuring: the last verdict holds a little longer, no more.
            if current is not None and now < current.recheck_at + CHECK_SECONDS:
                return current
            return Verdict(False, "being checked", recheck_at=now)
        try:
            current = self._verdicts.get(alias)
            if current is not None and time.monotonic() < current.recheck_at:
                return current
            return self._check(alias)
        finally:
            lock.release()

    def recheck(self, alias: str) -> Verdict:
        """Measure now, whatever the last verdict said."""
        with self._lock(alias):
            return self._check(alias)

    def reset(self) -> None:
        """Forget every verdict and close the probes (tests; a changed configuration)."""
        with self._guard:
            for probe in self._probes.values():
                probe.close()
            self._probes.clear()
            self._verdicts.clear()
            self._caught_up_at.clear()

    def _lock(self, alias: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(alias, threading.Lock())

    def _check(self, alias: str) -> Verdict:
        try:
            verdict = self.judge(alias, self.measure(alias))
        except Exception as exc:
            self._close_probe(alias)
            verdict = Verdict(
                False,
                f"unreachable ({type(exc).__name__}: {str(exc).strip()[:200]})",
                recheck_at=time.monotonic() + DOWN_SECONDS,
            )
        previous = self._verdicts.get(alias)
        self._verdicts[alias] = verdict
        if previous is None or previous.healthy != verdict.healthy:
            if verdict.healthy:
                logger.info("Read replica %s in use (lag %.1fs)", alias, verdict.lag_seconds)
            else:
                logger.warning("Read replica %s skipped: %s", alias, verdict.reason)
        return verdict

    def measure(self, alias: str) -> Measurement:
        """The primary's WAL position, then how far the standby has replayed."""
        sampled_at = time.monotonic()
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            primary_lsn = parse_lsn(cursor.fetchone()[0])
        in_recovery, replay, age = (
            self._probe(alias)
            .execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8"
            )
            .fetchone()
        )
        return Measurement(
            primary_lsn=primary_lsn,
            replay_lsn=parse_lsn(replay) if replay else None,
            replay_age_seconds=age,
            in_recovery=in_recovery,
            sampled_at=sampled_at,
        )

    def judge(self, alias: str, measured: Measurement) -> Verdict:
        """Healthy when in recovery and at most DATABASE_REPLICA_MAX_LAG_SECONDS behind.

        The lag is an upper bound, the smaller of two: the age of the last transaction the
        standby replayed (it has everything committed before it), and the time since this
        process last saw it caught up with the primary (it had everything then). The first
        alone would call a standby of an idle primary ever later though it misses nothing;
        a standby that has replayed all the primary has written is not behind at all."""
        now = time.monotonic()
        if not measured.in_recovery:
            # Promoted, or not a standby: its data may have parted from the primary's.
            return Verdict(False, "not in recovery", recheck_at=now + DOWN_SECONDS)
        if measured.replay_lsn is None:
            return Verdict(False, "has replayed nothing yet", recheck_at=now + CHECK_SECONDS)
        if measured.replay_lsn >= measured.primary_lsn:
            self._caught_up_at[alias] = measured.sampled_at
            lag = 0.0
        else:
            bounds = []
            if measured.replay_age_seconds is not None:
                bounds.append(max(measured.replay_age_seconds, 0.0))
            if alias in self._caught_up_at:
                bounds.append(now - self._caught_up_at[alias])
            lag = min(bounds, default=math.inf)
        healthy = lag <= _pin_settings()[1]
        return Verdict(
            healthy,
            "in use" if healthy else f"lagging at least {lag:.1f}s behind",
            recheck_at=now + CHECK_SECONDS,
            replay_lsn=measured.replay_lsn,
            lag_seconds=lag,
        )

    def _probe(self, alias: str):
        probe = self._probes.get(alias)
        if probe is None or probe.closed or probe.broken:
            import psycopg

            probe = psycopg.connect(
                **_probe_params(alias), connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True
            )
            probe.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            self._probes[alias] = probe
        return probe

    def _close_probe(self, alias: str) -> None:
        probe = self._probes.pop(alias, None)
        if probe is not None:
            probe.close()


def _probe_params(alias: str) -> dict[str, Any]:
    """psycopg's connection arguments for an alias, without Django's own options."""
    settings_dict = connections[alias].settings_dict
    django_only = {"pool", "isolation_level", "server_side_binding", "assume_role"}
    params = {k: v for k, v in settings_dict["OPTIONS"].items() if k not in django_only}
    for key, name in (
        ("NAME", "dbname"),
        ("USER", "user"),
        ("PASSWORD", "password"),
        ("HOST", "host"),
        ("PORT", "port"),
    ):
        if settings_dict.get(key):
            params[name] = str(settings_dict[key])
    return params


health = ReplicaHealth()


# --- The middleware ------------------------------------------------------------------------


def _within(scope: ReadScope, content: Iterable[bytes]) -> Iterator[bytes]:
    """A streamed body produced inside the request's read scope, one chunk at a time (the
    server iterates it after the middleware has returned)."""
    iterator = iter(content)
    end = object()
    while True:
        token = _scope.set(scope)
        try:
            chunk = next(iterator, end)
        finally:
            _scope.reset(token)
        if chunk is end:
            return
        yield chunk


class ReplicaMiddleware:
    """Opens a read scope for safe requests outside the widget; pins whoever wrote."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in SAFE_METHODS:
            response = self.get_response(request)
            if response.status_code < 400:
                # Read after the view: a sign-in has made its member the request's actor.
                pin_actors(request_actors(request))
            return response
        if not replica_aliases() or request.path_info.startswith(PRIMARY_ONLY_PATHS):
            return self.get_response(request)

        with replica_reads(request_actors(request)) as scope:
            response = self.get_response(request)
        if scope.wrote:
            pin_actors(scope.actors)
        elif (
            scope.used_replica
            and response.status_code >= 500
            and not health.recheck(scope.alias).healthy
        ):
            # The standby went away while this request read it: answer from the primary.
            logger.warning("Request failed on read replica %s; answered again", scope.alias)
            return self.get_response(request)
        if response.streaming and not response.is_async and scope.used_replica:
            response.streaming_content = _within(scope, response.streaming_content)
        return response
