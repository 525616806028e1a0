"""Time-ordered UUIDs (RFC 9562 version 7).

Contacts and conversations are inserted in bulk; random UUIDv4 keys land all over the
primary-key index and make every insert touch a cold page. UUIDv7 keys grow with time, so
new rows append to the right edge of the index. (Python 3.14 brings uuid.uuid7.)
"""

from __future__ import annotations

import os
import time
import uuid

_MASK_48 = (1 << 48) - 1
_MASK_62 = (1 << 62) - 1


def uuid7(ms: int | None = None) -> uuid.UUID:
    """A version-7 UUID for `ms` milliseconds since the epoch (now by default)."""
    if ms is None:
        ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10))
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & _MASK_62
    return uuid.UUID(int=(ms & _MASK_48) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)
