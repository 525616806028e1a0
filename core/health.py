"""Health, readiness and metrics endpoints, and the worker's heartbeat.

- `/healthz`: the process answers (no database): a load balancer's liveness probe.
- `/readyz`: this process can serve: the database answers, every migration is applied, and
  a task worker wrote its heartbeat recently (READYZ_WORKER_MAX_AGE_SECONDS; imports,
  exports and webhooks wait for one). JSON, 200 or 503, with each check's verdict.
- `/metrics`: Prometheus text (core.metrics), for a scraper with METRICS_TOKEN or from
  METRICS_ALLOWED_NETWORKS; anyone else gets a 404, as if there were nothing there.

All three are unauthenticated by session and cheap: the migration check loads the
migration graph once per process and remembers a success (code and migrations only change
with a new deploy, which starts new processes).
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core import metrics
from core.models import WorkerHeartbeat

logger = logging.getLogger("rapport.health")

_migrations_applied = False


@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def _database_check() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return False, f"unreachable: {type(exc).__name__}"
    return True, "ok"


def _migrations_check() -> tuple[bool, str]:
    global _migrations_applied
    if _migrations_applied:
        return True, "ok"
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return False, f"unknown: {type(exc).__name__}"
    if pending:
        return False, f"{len(pending)} not applied"
    _migrations_applied = True
    return True, "ok"


def _worker_check() -> tuple[bool, str]:
    try:
        newest = (
            WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
        )
    except DatabaseError as exc:
        return False, f"unknown: {type(exc).__name__}"
    if newest is None:
        return False, "no worker has reported"
    age = (timezone.now() - newest).total_seconds()
    if age > settings.READYZ_WORKER_MAX_AGE_SECONDS:
        return False, f"last heartbeat {age:.0f} s ago"
    return True, "ok"


@require_GET
@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    checks: dict[str, dict[str, object]] = {}
    database_ok, detail = _database_check()
    checks["database"] = {"ok": database_ok, "detail": detail}
    if database_ok:
        ok, detail = _migrations_check()
        checks["migrations"] = {"ok": ok, "detail": detail}
        if settings.READYZ_REQUIRE_WORKER:
            ok, detail = _worker_check()
            checks["worker"] = {"ok": ok, "detail": detail}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for network in settings.METRICS_ALLOWED_NETWORKS:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


@require_GET
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _metrics_allowed(request):
        raise Http404
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


# --- The worker's heartbeat -----------------------------------------------------------------


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def heartbeat_beat(name: str, started_at) -> None:
    WorkerHeartbeat.objects.update_or_create(
        name=name, defaults={"seen_at": timezone.now(), "started_at": started_at}
    )


def heartbeat_forever(stop: threading.Event) -> None:
    """A worker loop (core.worker_loops): write this worker's heartbeat now and every
    WORKER_HEARTBEAT_SECONDS; forget heartbeats silent for a day; delete its own on a clean
    stop."""
    name, started_at = worker_name(), timezone.now()
    while True:
        close_old_connections()
        try:
            heartbeat_beat(name, started_at)
            WorkerHeartbeat.objects.filter(seen_at__lt=timezone.now() - timedelta(days=1)).delete()
        except DatabaseError:
            logger.exception("Writing the worker heartbeat failed; trying again shortly")
        if stop.wait(settings.WORKER_HEARTBEAT_SECONDS):
            break
    with contextlib.suppress(DatabaseError):
        WorkerHeartbeat.objects.filter(name=name).delete()
    connections.close_all()  # this thread's connections only


def worker_gauges():
    """The task queue and the workers, read when /metrics is scraped."""
    from django.db.models import Count, Min
    from django_tasks_db.models import DBTaskResult
    from prometheus_client.core import GaugeMetricFamily

    now = timezone.now()
    queued = DBTaskResult.objects.ready().aggregate(count=Count("id"), oldest=Min("enqueued_at"))
    depth = GaugeMetricFamily("rapport_task_queue_depth", "Tasks queued and due, not yet taken.")
    depth.add_metric([], queued["count"])
    yield depth
    age = GaugeMetricFamily(
        "rapport_task_queue_oldest_age_seconds",
        "How long the oldest queued task has waited (0 when none waits).",
    )
    oldest = queued["oldest"]
    age.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
    yield age
    running = GaugeMetricFamily("rapport_tasks_running", "Tasks a worker is running.")
    running.add_metric([], DBTaskResult.objects.running().count())
    yield running
    workers = GaugeMetricFamily(
        "rapport_workers_alive",
        "Task workers whose heartbeat is younger than READYZ_WORKER_MAX_AGE_SECONDS.",
    )
    since = now - timedelta(seconds=settings.READYZ_WORKER_MAX_AGE_SECONDS)
    workers.add_metric([], WorkerHeartbeat.objects.filter(seen_at__gte=since).count())
    yield workers
