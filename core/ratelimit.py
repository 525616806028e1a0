"""Rate limits that hold across processes and machines (SPEC 9).

Each limit is a fixed-window counter: `hit(scope, ident, rate)` adds one to the counter of
the current window and says whether the caller is still within the rate, and if not, how
many seconds until the window ends (`Retry-After`). Counters live where every process sees
them: in Redis through Django's cache when `REDIS_URL` is set (its INCR is atomic), else in
the database, one `INSERT … ON CONFLICT DO UPDATE … RETURNING` per hit. (Django's
DatabaseCache is not used for counters: its incr() is a read followed by a write, which
loses counts when processes race, and costs four statements.)
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest

from config.env import parse_rate
from core.models import RateCounter

# Keys longer than this are hashed (IPv6 addresses, user names, long scopes).
_MAX_IDENT = 64
# One hit in this many also deletes expired counters.
_PRUNE_ONE_IN = 500

_TABLE = RateCounter._meta.db_table
_UPSERT_SQL = (
    f"INSERT INTO {_TABLE} (key, count, expires_at) VALUES <rows>"  # noqa: S608
    f" ON CONFLICT (key) DO UPDATE SET count = {_TABLE}.count + excluded.count"
    " RETURNING key, count"
)
_PRUNE_SQL = f"DELETE FROM {_TABLE} WHERE expires_at < %s"  # noqa: S608


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
        ends = (window + 1) * seconds
        windows.append((_key(scope, ident, seconds, window), limit, ends))
    totals = _add({key: ends for key, _, ends in windows}, amount)
    return [
        Verdict(
            allowed=totals[key] <= limit,
            count=totals[key],
            limit=limit,
            retry_after=max(1, math.ceil(ends - now)),
        )
        for key, limit, ends in windows
    ]


def forget(scope: str, ident: str, rate: str | tuple[int, int]) -> None:
    """Start the current window of this counter again from zero."""
    _, seconds = parse_rate(rate) if isinstance(rate, str) else rate
    key = _key(scope, ident, seconds, int(time.time() // seconds))
    if _uses_cache():
        cache.delete(key)
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


def _key(scope: str, ident: str, seconds: int, window: int) -> str:
    if len(ident) > _MAX_IDENT:
        ident = hashlib.sha256(ident.encode()).hexdigest()
    return f"rl:{scope}:{seconds}:{ident}:{window}"


def _uses_cache() -> bool:
    return settings.RATE_LIMIT_STORE == "cache"


def _add(ends_by_key: dict[str, float], amount: int) -> dict[str, int]:
    """Add `amount` to each counter (created on first use, expiring at its window's end);
    their new values."""
    if _uses_cache():
        totals = {}
        for key, ends in ends_by_key.items():
            timeout = max(1, math.ceil(ends - time.time()))
            cache.add(key, 0, timeout)
            try:
                totals[key] = cache.incr(key, amount)
            except ValueError:  # expired between add() and incr()
                cache.set(key, amount, timeout)
                totals[key] = amount
        return totals
    rows = ", ".join(["(%s, %s, %s)"] * len(ends_by_key))
    params = [v for key, ends in ends_by_key.items() for v in (key, amount, int(ends))]
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT_SQL.replace("<rows>", rows), params)
        totals = dict(cursor.fetchall())
        if random.randrange(_PRUNE_ONE_IN) == 0:
            cursor.execute(_PRUNE_SQL, [int(time.time())])
    return totals
