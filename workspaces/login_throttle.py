"""Sign-in throttling, per (address, user name) and per address, across every process.

Every attempt is counted *before* the password is checked, so a burst of guesses sent at
once through several server processes cannot all be evaluated before the first failure
is recorded. A successful sign-in clears its own count and gives back its address's count.
"""

from __future__ import annotations

import hashlib

from django.conf import settings

from core import ratelimit


def _rates() -> tuple[tuple[int, int], tuple[int, int]]:
    limit, window = settings.LOGIN_MAX_FAILURES, settings.LOGIN_FAILURE_WINDOW_SECONDS
    # An address may try a few different user names, but not spray many.
    return (limit, window), (limit * 4, window)


def _pair(address: str, username: str) -> str:
    user_part = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"{address}:{user_part}"


def attempt(address: str, username: str) -> int | None:
    """Count a sign-in attempt; the seconds to wait when this one is over the limit."""
    pair_rate, address_rate = _rates()
    by_address = ratelimit.hit("login-ip", address, address_rate)
    if not by_address.allowed:
        return by_address.retry_after
    by_pair = ratelimit.hit("login", _pair(address, username), pair_rate)
    return None if by_pair.allowed else by_pair.retry_after


def succeeded(address: str, username: str) -> None:
    """A correct password: forget this user's failures and give the address its try back."""
    pair_rate, address_rate = _rates()
    ratelimit.forget("login", _pair(address, username), pair_rate)
    ratelimit.hit("login-ip", address, address_rate, amount=-1)


def reset_attempt(address: str, email: str) -> int | None:
    """Count a password reset request: each sends a mail, so an address or an email gets
    as many per window as sign-in attempts. The seconds to wait when over the limit."""
    pair_rate, address_rate = _rates()
    by_address = ratelimit.hit("reset-ip", address, address_rate)
    if not by_address.allowed:
        return by_address.retry_after
    by_email = ratelimit.hit("reset", _pair("", email), pair_rate)
    return None if by_email.allowed else by_email.retry_after
