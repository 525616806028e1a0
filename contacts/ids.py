"""Time-ordered UUIDs (RFC 9562 version 7).

Contacts and conversations are inserted in bulk; random UUIDv4 keys land all over the
primary-key index and make every insert touch a cold page. UUIDv7 keys grow with time, so
new rows append to the right edge of the index. (Python 3.14 brings uuid.uuid7.)
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_MASK_48 = (1 << 48) - 1
_MASK_62 = (1 << 62) - 1


_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7(ms: int | None = None) -> uuid.UUID:
    """A version-7 UUID for `ms` milliseconds since the epoch (now by default).

    Ids made now are monotonic within the process (RFC 9562, 6.2 method 1: the 12 bits after
    the version count up within a millisecond), so "id order" is creation order even for
    rows made in the same millisecond.
    """
    global _last_ms, _counter
    rand = int.from_bytes(os.urandom(10))
    rand_b = rand & _MASK_62
    if ms is not None:
        rand_a = (rand >> 62) & 0xFFF
    else:
        now = time.time_ns() // 1_000_000
        with _lock:
            if now > _last_ms:
                _last_ms = now
                _counter = (rand >> 62) & 0x7FF  # start in the lower half: room to count up
            else:
                _counter += 1
                if _counter > 0xFFF:  # 4,096 ids in one millisecond: borrow the next one
                    _last_ms += 1
                    _counter = 0
            ms, rand_a = _last_ms, _counter
    return uuid.UUID(int=(ms & _MASK_48) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)
