"""Saved segments on the contacts table: save the view as a segment, update it with the
view as it is now, rename or share it, delete it, and the estimate beside each in the
sidebar. Opening one is the table's own URL (`?segment=<id>`, see contacts.views.table).

Each POST re-checks the person's access to the agent and to the segment: another person's
private segment, or another agent's, is a 404; a segment they see but may not change is
a 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from attributes.selectors import attribute_definition_map
from contacts import table as tbl
from contacts.models import Segment
from contacts.query.filterset import ContactFilterSet
from contacts.query.segments import segment_for_user, segment_params
from contacts.selectors import table_count
from contacts.services.segments import segment_create, segment_delete, segment_update
from contacts.views.common import error_text, list_url, stash_notice
from contacts.views.table import _return_state, render_table
from core.errors import ForbiddenError, ValidationFailed
from workspaces.access import get_agent_access
from workspaces.selectors import AgentAccess


def _segment_or_404(request: HttpRequest, access: AgentAccess, segment_id: int) -> Segment:
    try:
        segment = segment_for_user(agent=access.agent, user=request.user, segment_id=segment_id)
    except Segment.DoesNotExist:
        raise Http404("No such segment.") from None
    segment.agent = access.agent
    return segment


def _flag(value: Any) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "on", "yes")


def _go(request: HttpRequest, url: str) -> HttpResponse:
    """After a change, the whole page again (the sidebar lists the segments)."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _refused(
    request: HttpRequest, access: AgentAccess, state: QueryDict, form: str, error: ValidationFailed
) -> HttpResponse:
    """The table as it was, with the segment form open and the reason beside its field."""
    return render_table(
        request,
        access,
        state,
        status=422,
        pushed=list_url(access.agent) + tbl.querystring(state),
        extra={
            "segment_form": form,
            "segment_error": error_text(error),
            "segment_name_value": request.POST.get("name", "")[:200],
            "segment_shared_value": _flag(request.POST.get("shared")),
        },
    )


@require_POST
@login_required
def segment_create_view(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """Save the table's current view (the posted `query`) as a new segment."""
    access = get_agent_access(request, agent_public_id)
    agent = access.agent
    state = _return_state(request)
    try:
        segment = segment_create(
            agent=agent,
            user=request.user,
            name=request.POST.get("name", ""),
            shared=_flag(request.POST.get("shared")),
            query=request.POST.get("saved_query", ""),
            definitions=attribute_definition_map(agent=agent),
        )
    except ValidationFailed as exc:
        return _refused(request, access, state, "create", exc)
    whom = "shared with the team" if segment.shared else "only you see it"
    stash_notice(request, agent, f"Saved segment “{segment.name}” ({whom}).")
    return _go(request, f"{list_url(agent)}?segment={segment.pk}")


@require_POST
@login_required
def segment_change_view(
    request: HttpRequest, agent_public_id: str, segment_id: int
) -> HttpResponse:
    """One segment's buttons: `update` (keep the view as it is now), `rename` (name and,
    for its creator, shared), `delete`."""
    access = get_agent_access(request, agent_public_id)
    agent = access.agent
    segment = _segment_or_404(request, access, segment_id)
    state = _return_state(request)
    action = request.POST.get("action", "")
    if action not in ("update", "rename", "delete"):
        return HttpResponseBadRequest("Unknown segment action.")
    base = list_url(agent)
    try:
        if action == "delete":
            segment_delete(segment=segment, user=request.user, is_admin=access.is_admin)
            state.pop("segment", None)
            stash_notice(request, agent, f"Deleted segment “{segment.name}”.")
            return _go(request, base + tbl.querystring(state))
        if action == "update":
            segment_update(
                segment=segment,
                user=request.user,
                is_admin=access.is_admin,
                definitions=attribute_definition_map(agent=agent),
                query=request.POST.get("saved_query", ""),
            )
            stash_notice(request, agent, f"Updated “{segment.name}” to this view.")
        else:
            mine = segment.owner_id == request.user.pk
            segment_update(
                segment=segment,
                user=request.user,
                is_admin=access.is_admin,
                definitions=attribute_definition_map(agent=agent),
                name=request.POST.get("name", ""),
                shared=_flag(request.POST.get("shared")) if mine else None,
            )
            stash_notice(request, agent, f"Saved segment “{segment.name}”.")
    except ForbiddenError as exc:
        raise PermissionDenied(exc.message) from None
    except ValidationFailed as exc:
        return _refused(request, access, state, action, exc)
    state["segment"] = str(segment.pk)
    return _go(request, base + tbl.querystring(state))


@require_GET
@login_required
def segment_count_view(request: HttpRequest, agent_public_id: str, segment_id: int) -> HttpResponse:
    """How many contacts the segment holds now, estimated past 10,000 (the sidebar loads
    it for each segment after the page, so a slow count never holds the table up)."""
    access = get_agent_access(request, agent_public_id)
    agent = access.agent
    segment = _segment_or_404(request, access, segment_id)
    filters, _ = ContactFilterSet(
        segment_params(segment), agent=agent, definitions=attribute_definition_map(agent=agent)
    ).lenient()
    count, exact = table_count(qs=filters.qs, filters=filters, agent=agent)
    response = HttpResponse(tbl.format_estimate(count, exact), content_type="text/plain")
    response["Cache-Control"] = "private, no-store"
    return response
