"""gunicorn's settings for `make serve` (`manage.py serve`), sized from the environment.

- WEB_CONCURRENCY processes (default: cores + 1) of GUNICORN_THREADS threads each (default
  4; 1 means plain sync workers). Each process borrows database connections from its own
  psycopg pool of at most DB_POOL_SIZE, so the web tier never holds more than
  WEB_CONCURRENCY × DB_POOL_SIZE connections.
- A worker is replaced after GUNICORN_MAX_REQUESTS requests (plus up to 10 % jitter, so they
  do not all restart together); one silent for GUNICORN_TIMEOUT seconds is killed.
- SIGTERM: stop accepting, let requests in flight finish for up to GUNICORN_GRACEFUL_TIMEOUT
  seconds, then exit.
- No access log: the app writes one JSON line per request itself (core.observability);
  gunicorn's own lines use the same format.
"""

from __future__ import annotations

import os

from core.observability import logging_config, structlog_configure


def _int(name: str, default: int, minimum: int = 0) -> int:
    value = os.environ.get(name, "")
    try:
        number = int(value) if value else default
    except ValueError:
        raise SystemExit(f"{name}={value!r} must be a whole number.") from None
    if number < minimum:
        raise SystemExit(f"{name} must be at least {minimum}.")
    return number


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{_int('PORT', 8000, 1)}"
workers = _int("WEB_CONCURRENCY", (os.cpu_count() or 1) + 1, 1)
threads = _int("GUNICORN_THREADS", 4, 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 60, 1)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30, 1)
keepalive = 5
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000, 0)
max_requests_jitter = max_requests // 10
backlog = 2048
# Heartbeat files on tmpfs: a slow disk must not make the arbiter think a worker hangs.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - gunicorn docs
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# gunicorn's own lines (start, stop, a worker replaced) in the app's format: JSON lines in
# production, like every other line of the process.
structlog_configure()
logconfig_dict = logging_config(
    fmt=os.environ.get("LOG_FORMAT", "json"), level=os.environ.get("LOG_LEVEL", "INFO")
)
logconfig_dict["loggers"].update(
    {
        name: {"level": "INFO", "handlers": ["console"], "propagate": False}
        for name in ("gunicorn.error", "gunicorn.access")
    }
)
proc_name = "rapport-web"
# The proxy in front (BEHIND_TLS_PROXY) connects from these addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def child_exit(server, worker) -> None:
    """A worker that exits leaves its metric files behind; count it as dead (prometheus-client
    multiprocess mode) so its gauges stop being reported."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
