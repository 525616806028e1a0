"""The bulk job notice above the contacts table: progress while the job runs (htmx polls it
every second), then what it did, with Stop, Undo (a delete), Resume and Dismiss.

A member sees and acts on their own jobs only; another member's job id answers 404 like
another workspace's.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from contacts.table import format_estimate
from contacts.views.common import error_text, list_url
from core.errors import DomainError
from transfers.bulk import services
from transfers.bulk.actions import BulkAction
from transfers.bulk.selectors import bulk_job_current, bulk_job_get
from transfers.models import BulkJob
from workspaces.access import get_agent_access
from workspaces.selectors import AgentAccess

TEMPLATE = "contacts/_bulk_job.html"
OPERATIONS = ("cancel", "undo", "resume", "dismiss")


def panel_context(access: AgentAccess, job: BulkJob | None, error: str = "") -> dict[str, Any]:
    agent = access.agent
    context: dict[str, Any] = {
        "agent": agent,
        "job": job,
        "error": error,
        "panel_url": reverse("transfers:bulk_jobs", kwargs={"agent_public_id": agent.public_id}),
    }
    if job is None:
        return context
    action = BulkAction(job.action, job.params)
    exact = job.estimate_exact or not job.is_active
    context.update(
        summary="Undo the bulk delete" if job.undo_of_id else action.summary,
        done_text=action.done_text(job.changed_count, job.processed_count - job.changed_count),
        position_text=f"{job.processed_count:,} of {format_estimate(job.total, exact)}",
        processed_text=f"{job.processed_count:,}",
        changed_text=f"{job.changed_count:,}",
        action_url=reverse(
            "transfers:bulk_job", kwargs={"agent_public_id": agent.public_id, "job_id": job.pk}
        ),
        view_url=list_url(agent) + (f"?{job.query}" if job.query else ""),
        can_undo=services.bulk_job_can_undo(job),
        can_resume=services.bulk_job_can_resume(job),
        stalled=services.bulk_job_is_stalled(job),
    )
    return context


@require_GET
@login_required
@vary_on_headers("HX-Request")
def bulk_job_panel(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """The member's current bulk job as the notice htmx swaps in (the table for a browser)."""
    access = get_agent_access(request, agent_public_id)
    if not request.htmx:
        return redirect(list_url(access.agent))
    job = bulk_job_current(agent=access.agent, user=request.user)
    return render(request, TEMPLATE, panel_context(access, job))


@require_POST
@login_required
def bulk_job_action(request: HttpRequest, agent_public_id: str, job_id: Any) -> HttpResponse:
    """The notice's buttons: stop, undo (a delete), resume (a failed job), dismiss."""
    access = get_agent_access(request, agent_public_id)
    try:
        job = bulk_job_get(agent=access.agent, user=request.user, job_id=job_id)
    except BulkJob.DoesNotExist:
        raise Http404("No such bulk action.") from None
    operation = request.POST.get("op", "")
    if operation not in OPERATIONS:
        return HttpResponse("Unknown operation.", status=400, content_type="text/plain")
    error, status = "", 200
    try:
        if operation == "cancel":
            services.bulk_job_cancel(job=job)
        elif operation == "undo":
            services.bulk_job_undo(job=job, user=request.user)
        elif operation == "resume":
            services.bulk_job_resume(job=job)
        else:
            services.bulk_job_dismiss(job=job)
    except DomainError as exc:
        error, status = error_text(exc), exc.status
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(list_url(access.agent))
    current = bulk_job_current(agent=access.agent, user=request.user)
    return render(request, TEMPLATE, panel_context(access, current, error), status=status)
