"""Rate limits that hold across processes and machines (SPEC 9).

Each limit is a fixed-window counter: `hit(scope, ident, rate)` adds one to the counter of
the current window and says whether the caller is still within the rate, and if not, how
many seconds until the window ends (`Retry-After`). Counters live where every process sees
them: in Redis through Django's cache when `REDIS_URL` is set (its INCR is atomic), else in
the database, one `INSERT … ON CONFLICT DO UPDATE … RETURNING` per call, whatever the
number of limits checked. (Django's DatabaseCache is not used for counters: its incr() is
a read followed by a write, which loses counts when processes race, and costs four
statements.)

In the database a counter is one row per (limit, caller) that starts over when a new
window begins, so the table holds one row per recent caller, not one per window. On
PostgreSQL the same statement deletes a few rows whose window ended long ago (skipping
any another process holds), so the table never grows without bound and no request pays
for a sweep; SQLite (development) keeps them. Run on its own (not inside a caller's
transaction), it commits with synchronous_commit off: counters are not worth a disk flush,
and one agent's callers all update one row.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest

from core.models import RateCounter
from core.prepared import prepared
from core.rates import parse_rate
from core.sql import RATE_PRUNE_CTE, RATE_RELAXED_COMMIT, RATE_UPSERT_SQL

# Keys longer than this are hashed (IPv6 addresses, user names, long scopes).
_MAX_IDENT = 64


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    limit: int
    retry_after: int  # seconds until the window ends


def hit(scope: str, ident: str, rate: str | tuple[int, int], *, amount: int = 1) -> Verdict:
    """Count `amount` calls of `ident` in `scope` against `rate`: "120/minute", or
    (limit, seconds) for windows that are not a whole unit."""
    return hit_many([(scope, ident, rate)], amount=amount)[0]


def hit_many(
    limits: list[tuple[str, str, str | tuple[int, int]]], *, amount: int = 1
) -> list[Verdict]:
    """`hit` for several limits at once, in one statement on the database store (the
    widget checks two limits on every identify)."""
    now = time.time()
    windows = []
    for scope, ident, rate in limits:
        limit, seconds = parse_rate(rate) if isinstance(rate, str) else rate
        window = int(now // seconds)
        windows.append((_key(scope, ident, seconds), window, (window + 1) * seconds, limit))
    totals = _add([(key, window, ends) for key, window, ends, _ in windows], amount)
    return [
        Verdict(
            allowed=totals[key] <= limit,
            count=totals[key],
            limit=limit,
            retry_after=max(1, math.ceil(ends - now)),
        )
        for key, _window, ends, limit in windows
    ]


def forget(scope: str, ident: str, rate: str | tuple[int, int]) -> None:
    """Start this counter again from zero."""
    _, seconds = parse_rate(rate) if isinstance(rate, str) else rate
    key = _key(scope, ident, seconds)
    if _uses_cache():
        cache.delete(f"{key}:{int(time.time() // seconds)}")
    else:
        RateCounter.objects.filter(key=key).delete()


def client_address(request: HttpRequest) -> str:
    """The caller's IP address. Behind a TLS-terminating proxy (BEHIND_TLS_PROXY) it is
    the last address of X-Forwarded-For, the one the proxy itself saw; earlier entries are
    whatever the client chose to send and are never trusted."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(scope: str, ident: str, seconds: int) -> str:
    if len(ident) > _MAX_IDENT:
        ident = hashlib.sha256(ident.encode()).hexdigest()
    return f"rl:{scope}:{seconds}:{ident}"


def _uses_cache() -> bool:
    return settings.RATE_LIMIT_STORE == "cache"


def _add(counters: list[tuple[str, int, int]], amount: int) -> dict[str, int]:
    """Add `amount` to each (key, window, end of window) counter, which starts over when
    its window is new; their new values."""
    if _uses_cache():
        totals = {}
        for key, window, ends in counters:
            timeout = max(1, math.ceil(ends - time.time()))
            windowed = f"{key}:{window}"  # Redis expires each window by itself
            cache.add(windowed, 0, timeout)
            try:
                totals[key] = cache.incr(windowed, amount)
            except ValueError:  # expired between add() and incr()
                cache.set(windowed, amount, timeout)
                totals[key] = amount
        return totals
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(counters))
    params: list = [v for key, w, ends in counters for v in (key, w, max(amount, 0), ends)]
    sql = RATE_UPSERT_SQL.replace("<rows>", rows)
    if connection.vendor == "postgresql":
        keys = [key for key, _, _ in counters]
        sql = RATE_PRUNE_CTE.replace("<keys>", ", ".join(["%s"] * len(keys))) + sql
        params = [int(time.time()), *keys, *params]
        if not connection.in_atomic_block:
            # A statement of its own: it commits without waiting for the WAL to reach the
            # disk. Every caller of one agent updates the same counter row, so each waited
            # for the previous one's flush (2.4 ms here) and they queued behind that row;
            # a crash can lose the last fraction of a second of counts, nothing more. Inside
            # a caller's transaction the caller's durability stands.
            sql += RATE_RELAXED_COMMIT
    with connection.cursor() as cursor:
        cursor.execute(prepared(sql), [*params, amount])
        return {row[0]: row[1] for row in cursor.fetchall()}
