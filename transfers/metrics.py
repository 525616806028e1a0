"""Import and export figures for /metrics (core.metrics): rows written by imports, counted
when their batch commits (rate() of the counter is the import speed), and the jobs waiting
or running, read when scraped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from contacts.models import AuditEvent
from contacts.signals import ChangeEntry, contacts_changed
from core import metrics
from transfers.models import ContactImport

_OUTCOMES = {AuditEvent.Action.CREATED: "created", AuditEvent.Action.UPDATED: "updated"}


def on_contacts_changed(
    sender: Any, *, agent_id: int, entries: Sequence[ChangeEntry], source: str, **kwargs: Any
) -> None:
    if not source.startswith("import:"):
        return
    counts = Counter(_OUTCOMES.get(entry.action, "other") for entry in entries)

    def count() -> None:
        for outcome, n in counts.items():
            metrics.IMPORT_ROWS.labels(outcome).inc(n)

    transaction.on_commit(count)


def import_gauges() -> Iterable[GaugeMetricFamily]:
    status = ContactImport.Status
    jobs = GaugeMetricFamily(
        "rapport_imports", "Imports waiting or running, by status.", labels=["status"]
    )
    found = dict(
        ContactImport.objects.filter(status__in=(status.QUEUED, status.RUNNING))
        .values_list("status")
        .annotate(n=Count("id"))
    )
    for name in (status.QUEUED, status.RUNNING):
        jobs.add_metric([str(name)], found.get(name, 0))
    yield jobs


def connect() -> None:
    contacts_changed.connect(on_contacts_changed, dispatch_uid="transfers.metrics")
    metrics.gauges_register("imports", import_gauges)
