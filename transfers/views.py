"""Import and export in the dashboard (admins).

Upload -> the job page: column mapping (automatic, adjustable) -> dry run with per-row
results -> the import as a background job with a progress bar -> summary and the failed
rows as a file. The job page is one URL: the full page, or for htmx the `import-job`
partial that polls itself while the job runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from attributes.models import AttributeType
from attributes.selectors import attribute_definitions
from contacts.models import Contact
from contacts.query.filterset import ContactFilterSet
from contacts.selectors import parse_contact_id
from contacts.views.common import MAX_BULK, error_text, list_url
from core.errors import DomainError, TooLargeError
from core.htmx import render_page_or_fragment
from transfers import services
from transfers.exports.stream import EXPORT_FORMATS, export_response
from transfers.imports.files import report_exists, report_name
from transfers.imports.mapping import IGNORE, attribute_key_for, target_choices
from transfers.imports.readers import DELIMITERS, FORMAT_LABELS
from transfers.models import ContactImport
from transfers.selectors import (
    ISSUE_PAGE,
    failed_rows_filename,
    failed_rows_stream,
    import_column_samples,
    import_get,
    import_issues,
    imports_recent,
)
from workspaces.access import get_agent_access
from workspaces.selectors import AgentAccess

MAX_EXPORT_IDS = MAX_BULK


class UploadForm(forms.Form):
    file = forms.FileField(label="File", help_text="CSV, JSON (an array of objects) or JSON Lines.")
    create_unknown = forms.BooleanField(
        required=False,
        label="Offer new attributes for unknown columns",
        help_text="Otherwise unknown columns start as “Don't import”; you can change each one.",
    )


def _job_for(
    request: HttpRequest, agent_public_id: str, import_id: Any
) -> tuple[AgentAccess, ContactImport]:
    """The import if it belongs to an agent the user administers (404 / 403 otherwise)."""
    access = get_agent_access(request, agent_public_id, admin=True)
    try:
        job = import_get(agent=access.agent, import_id=import_id)
    except ContactImport.DoesNotExist:
        raise Http404("No such import.") from None
    return access, job


def _job_url(job: ContactImport, name: str = "transfers:import_job") -> str:
    return reverse(name, kwargs={"agent_public_id": job.agent.public_id, "import_id": job.pk})


# --- Upload ----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def import_upload(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """The upload form and the agent's recent imports."""
    access = get_agent_access(request, agent_public_id, admin=True)
    agent = access.agent
    form = UploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                job = services.import_create(
                    agent=agent,
                    upload=form.cleaned_data["file"],
                    actor_label=f"import by {request.user.get_username()}",
                    user=request.user,
                    create_unknown=form.cleaned_data["create_unknown"],
                )
            except TooLargeError as exc:
                form.add_error("file", error_text(exc))
                status = 413
            except DomainError as exc:
                form.add_error("file", error_text(exc))
            else:
                return redirect(_job_url(job))
        status = status if status == 413 else 400
    context = {
        "agent": agent,
        "form": form,
        "jobs": imports_recent(agent=agent),
        "max_size": services.max_upload_text(),
        "max_rows": f"{settings.IMPORT_MAX_ROWS:,}",
        "contacts_url": list_url(agent),
    }
    return render(request, "transfers/import.html", context, status=status)


# --- The job page ----------------------------------------------------------------------------


def _mapping_rows(job: ContactImport) -> list[dict[str, Any]]:
    definitions = attribute_definitions(agent=job.agent, include_archived=True)
    base = target_choices(definitions)  # live attributes only
    samples = import_column_samples(job=job)
    taken = {d.key for d in definitions}  # an archived key cannot be created again either
    rows = []
    for index, column in enumerate(job.columns):
        key = attribute_key_for(column)
        choices = list(base)
        if key and key not in taken:
            choices.append((f"new:{key}", f"New attribute “{key}”"))
        rows.append(
            {
                "index": index,
                "column": column,
                "target": job.mapping.get(column, IGNORE),
                "choices": choices,
                "new_key": key if choices[-1][0] == f"new:{key}" else "",
                # The type only matters, and is only shown, when the row creates the attribute.
                "creates": job.mapping.get(column, IGNORE) == f"new:{key}",
                "new_type": job.new_attributes.get(key or "", "text"),
                "samples": samples.get(column, []),
            }
        )
    return rows


def _duration(seconds: int) -> str:
    """5 minutes, 1 hour: a setting in seconds as the page says it."""
    now = timezone.now()
    return timesince(now - timedelta(seconds=seconds), now)


def _elapsed(job: ContactImport) -> str:
    """How long the run took, in the largest units that say it: "12 seconds", "3 minutes"."""
    if not (job.started_at and job.finished_at):
        return ""
    seconds = max(int((job.finished_at - job.started_at).total_seconds()), 0)
    if seconds < 60:
        return "under a second" if seconds < 1 else f"{seconds} second{'s' if seconds != 1 else ''}"
    return timesince(job.started_at, job.finished_at)


def job_context(request: HttpRequest, job: ContactImport) -> dict[str, Any]:
    kind = request.GET.get("issues", "")
    kind = kind if kind in ("error", "skipped") else ""
    try:
        offset = max(int(request.GET.get("offset", 0)), 0)
    except ValueError:
        offset = 0
    issue_count = job.failed_count + job.skipped_count
    if kind == "error":
        issue_count = job.failed_count
    elif kind == "skipped":
        issue_count = job.skipped_count
    return {
        "agent": job.agent,
        "job": job,
        "job_url": _job_url(job),
        "action_url": _job_url(job, "transfers:import_action"),
        "failed_url": _job_url(job, "transfers:import_failed_rows"),
        "report_url": _job_url(job, "transfers:import_report")
        if job.dry_run and report_exists(job)
        else "",
        "contacts_url": list_url(job.agent),
        "imports_url": reverse("transfers:import", kwargs={"agent_public_id": job.agent.public_id}),
        "format_label": FORMAT_LABELS.get(job.file_format, job.file_format),
        "delimiter_label": DELIMITERS.get(job.delimiter, ""),
        "editable": job.mapping_editable,
        "mapping_rows": _mapping_rows(job) if job.mapping_editable else [],
        "types": AttributeType.choices,
        "issues": import_issues(job=job, kind=kind or None, offset=offset),
        "issue_kind": kind,
        "issue_offset": offset,
        "issue_next": offset + ISSUE_PAGE if offset + ISSUE_PAGE < issue_count else None,
        "issue_prev": max(offset - ISSUE_PAGE, 0) if offset else None,
        "can_resume": services.import_can_resume(job),
        "stalled": services.import_is_stalled(job),
        "quiet": services.import_is_quiet(job),
        "stale_after": _duration(settings.IMPORT_STALE_SECONDS),
        "took": _elapsed(job),
        "not_imported": job.failed_count + job.skipped_count,
        "dry_run_summary": job.dry_run_summary,
        "would_write": (job.dry_run_summary or {}).get("created", 0)
        + (job.dry_run_summary or {}).get("updated", 0),
    }


@require_GET
@login_required
@vary_on_headers("HX-Request")
def import_job(request: HttpRequest, agent_public_id: str, import_id: Any) -> HttpResponse:
    _access, job = _job_for(request, agent_public_id, import_id)
    context = job_context(request, job)
    return render_page_or_fragment(request, "transfers/import_job.html", "import-job", context)


def _posted_mapping(request: HttpRequest, job: ContactImport) -> tuple[dict, dict]:
    mapping, types = {}, {}
    for index, column in enumerate(job.columns):
        target = request.POST.get(f"map-{index}", IGNORE)
        mapping[column] = target
        if target.startswith("new:"):
            types[target[4:]] = request.POST.get(f"type-{index}", "text")
    return mapping, types


@require_POST
@login_required
def import_action(request: HttpRequest, agent_public_id: str, import_id: Any) -> HttpResponse:
    """The job page's buttons: save the mapping and validate (dry run) or import; resume; delete."""
    access, job = _job_for(request, agent_public_id, import_id)
    action = request.POST.get("action", "")
    try:
        if action in ("dry_run", "import", "save"):
            if job.mapping_editable and any(k.startswith("map-") for k in request.POST):
                mapping, types = _posted_mapping(request, job)
                services.import_set_mapping(job=job, mapping=mapping, new_attributes=types)
            if action != "save":
                services.import_start(job=job, dry_run=action == "dry_run")
        elif action == "resume":
            services.import_resume(job=job)
        elif action == "delete":
            services.import_delete(job=job)
            messages.success(request, f"The import of {job.filename} is deleted.")
            return redirect("transfers:import", agent_public_id=access.agent.public_id)
        else:
            return HttpResponse("Unknown action.", status=400)
    except DomainError as exc:
        messages.error(request, error_text(exc))
    return redirect(_job_url(job))


@require_GET
@login_required
def import_failed_rows(request: HttpRequest, agent_public_id: str, import_id: Any):
    """The rows that were not imported, in the file's own columns plus an error column."""
    _access, job = _job_for(request, agent_public_id, import_id)
    content_type = "text/csv; charset=utf-8" if job.file_format == "csv" else "application/x-ndjson"
    response = StreamingHttpResponse(failed_rows_stream(job), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{failed_rows_filename(job)}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@login_required
def import_report(request: HttpRequest, agent_public_id: str, import_id: Any):
    """The dry run's verdict on every row (create, update, unchanged, error, skip)."""
    _access, job = _job_for(request, agent_public_id, import_id)
    if not job.dry_run or not report_exists(job):
        raise Http404("This import has no dry-run report.")
    stem = job.filename.rsplit(".", 1)[0] or "import"
    response = FileResponse(
        default_storage.open(report_name(job), "rb"),
        as_attachment=True,
        filename=f"{stem}-dry-run.csv",
        content_type="text/csv; charset=utf-8",
    )
    response["Cache-Control"] = "no-store"
    return response


# --- Export ----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def contact_export(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """Export the table's filtered view (GET with its filters) or selected rows (POST `id`)."""
    access = get_agent_access(request, agent_public_id, admin=True)
    agent = access.agent
    params = request.POST if request.method == "POST" else request.GET
    file_format = params.get("format", "csv")
    if file_format not in EXPORT_FORMATS:
        return HttpResponse("Choose format csv, json or jsonl.", status=400)
    definitions = attribute_definitions(agent=agent)
    if request.method == "POST":
        ids = [pk for pk in map(parse_contact_id, request.POST.getlist("id")) if pk]
        if not ids:
            messages.error(request, "Select at least one contact to export.")
            return redirect(list_url(agent))
        if len(ids) > MAX_EXPORT_IDS:
            messages.error(
                request, f"Select at most {MAX_EXPORT_IDS:,} contacts, or export a view."
            )
            return redirect(list_url(agent))
        qs = Contact.objects.filter(agent=agent, pk__in=ids)
    else:
        filters = ContactFilterSet(params, agent=agent, definitions={d.key: d for d in definitions})
        try:
            qs = filters.validated().qs
        except DomainError as exc:
            return HttpResponse(error_text(exc), status=400, content_type="text/plain")
    return export_response(qs, agent=agent, file_format=file_format, definitions=definitions)
