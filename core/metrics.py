"""Prometheus metrics (prometheus-client), served at /metrics to a scraper that holds the
token or comes from an allowed network (core.health.metrics_view).

Counters and histograms live in each process. Under `make serve` several processes serve
(gunicorn's workers, the task workers): PROMETHEUS_MULTIPROC_DIR then names a folder they
all write their samples to, and a scrape of any one of them adds up every process's
(prometheus-client's multiprocess mode; gunicorn's child_exit hook marks a dead worker's
files). Without it (the dev server, tests) a process reports its own.

Gauges that describe the database (the task queue's depth and its oldest task's age, the
webhook outbox) are read when scraped, by collectors the apps register here: core knows
no app above it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from django.db import DatabaseError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger("rapport.metrics")

REQUEST_SECONDS = Histogram(
    "rapport_http_request_duration_seconds",
    "Time to answer a request, by view (the URL pattern's name), method and status.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
REQUEST_QUERIES = Histogram(
    "rapport_http_request_db_queries",
    "Database queries made by one request, by view.",
    ["view"],
    buckets=(0, 1, 2, 5, 10, 20, 50, 100, 250),
)
DB_QUERIES = Counter(
    "rapport_db_queries_total", "Database queries made while answering requests, by view.", ["view"]
)
IDENTIFY = Counter(
    "rapport_identify_total",
    "Widget identify calls by outcome: the identity reached, or the error code.",
    ["outcome"],
)
IMPORT_ROWS = Counter(
    "rapport_import_rows_total",
    "Contacts written by imports (committed batches), by outcome: created or updated.",
    ["outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "rapport_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: succeeded, retrying (will be tried again) or failed.",
    ["outcome"],
)

# Collectors of database gauges, registered by the apps (see module docstring).
GaugeSource = Callable[[], Iterable[GaugeMetricFamily]]
_gauges: dict[str, GaugeSource] = {}


def gauges_register(name: str, source: GaugeSource) -> None:
    _gauges[name] = source


class _DatabaseGauges:
    def collect(self) -> Iterable[Metric]:
        for name, source in _gauges.items():
            try:
                gauges = list(source())
            except DatabaseError:
                # A database that does not answer must not take the process's metrics down.
                logger.warning("Reading the %s gauges failed", name, exc_info=True)
                continue
            yield from gauges


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    database = CollectorRegistry()
    database.register(_DatabaseGauges())
    return generate_latest(processes) + generate_latest(database), CONTENT_TYPE_LATEST
