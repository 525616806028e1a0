"""Failed-login throttling: per (address, username) and per address, in the cache."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(address: str, username: str) -> tuple[str, str]:
    user_part = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:{address}:{user_part}", f"login-fail-ip:{address}"


def is_locked(address: str, username: str) -> bool:
    pair, ip_only = _keys(address, username)
    limit = settings.LOGIN_MAX_FAILURES
    # An address may try a few different usernames, but not spray many.
    return cache.get(pair, 0) >= limit or cache.get(ip_only, 0) >= limit * 4


def record_failure(address: str, username: str) -> None:
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    for key in _keys(address, username):
        cache.add(key, 0, window)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, window)


def reset(address: str, username: str) -> None:
    cache.delete(_keys(address, username)[0])
