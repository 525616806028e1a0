"""Reads of bulk jobs for the notice above the contacts table."""

from __future__ import annotations

from typing import Any

from transfers.models import BulkJob
from workspaces.models import Agent


def bulk_job_current(*, agent: Agent, user) -> BulkJob | None:
    """The member's latest bulk job on this agent that is running or whose notice is open."""
    return (
        BulkJob.objects.filter(agent=agent, created_by=user, dismissed_at__isnull=True)
        .order_by("-created_at")
        .first()
    )


def bulk_job_get(*, agent: Agent, user, job_id: Any) -> BulkJob:
    """One of the member's bulk jobs on this agent (DoesNotExist for anyone else's)."""
    return BulkJob.objects.get(agent=agent, created_by=user, pk=job_id)
