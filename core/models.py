"""The kernel's tables: rate-limit counters (core.ratelimit) and worker heartbeats
(core.health)."""

from __future__ import annotations

from django.db import models


class RateCounter(models.Model):
    """The counter of one rate limit for one caller (see core.ratelimit), shared by every
    process.

    On PostgreSQL the table is UNLOGGED: counters are worth nothing after a crash, and
    skipping the write-ahead log keeps a counted request from waiting on a disk flush.
    """

    # One counter per limit and caller ("rl:widget-ip:60:<agent>:<address>").
    key = models.CharField(max_length=200, primary_key=True)
    # The window the count belongs to (Unix time // window length): a new one starts over.
    window_start = models.BigIntegerField(default=0)
    count = models.IntegerField(default=0)
    # Unix seconds: the raw upsert on the hot path passes plain numbers on every database.
    expires_at = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"


class WorkerHeartbeat(models.Model):
    """One row per running task worker (`manage.py worker`), rewritten every
    WORKER_HEARTBEAT_SECONDS: /readyz and the metrics tell from it whether any worker is
    alive. A worker that stops cleanly deletes its row; a killed one's row just ages."""

    # host:pid, unique while the process lives.
    name = models.CharField(max_length=200, primary_key=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.name} (seen {self.seen_at:%H:%M:%S})"
