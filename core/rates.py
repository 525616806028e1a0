"""Rates in DRF's syntax ("120/minute"), for settings and rate limits alike."""

from __future__ import annotations

_RATE_PERIODS = {
    **dict.fromkeys(("s", "sec", "second"), 1),
    **dict.fromkeys(("m", "min", "minute"), 60),
    **dict.fromkeys(("h", "hour"), 3600),
    **dict.fromkeys(("d", "day"), 86400),
}


def parse_rate(text: str) -> tuple[int, int]:
    """`"120/minute"` -> (120, 60): DRF's rate syntax. ValueError when it is not one."""
    count, _, period = str(text).strip().partition("/")
    count, period = count.strip(), period.strip().lower()
    if not (count.isascii() and count.isdigit() and int(count) >= 1):
        raise ValueError(f"{text!r} is not a rate; write it as 120/minute.")
    if period not in _RATE_PERIODS:
        raise ValueError(f"{text!r} is not a rate; the period is second, minute, hour or day.")
    return int(count), _RATE_PERIODS[period]
