"""The table's bulk bar: add or remove a tag, set an attribute, delete, restore or merge.

The selected rows (at most MAX_BULK, one page) are changed at once, in this request. "Select
all N matching" sends `scope=all`: the action then goes to every contact the table's view
matches, as a background job (`transfers.bulk.services.bulk_job_start`) that reads the
view's filters again when it runs; its progress shows above the table.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from attributes.selectors import attribute_definitions
from contacts.models import IDENTITY_RANK, Contact
from contacts.query.filterset import ContactFilterSet
from contacts.selectors import table_count
from contacts.views.common import MAX_BULK, NOTICE_KEY, error_text, stash_notice, uuids
from contacts.views.table import _back_to_table, _return_state
from core.errors import DomainError, ValidationFailed
from transfers.bulk.actions import (
    ACTION_LABELS,
    BackgroundRequest,
    BulkAction,
    bulk_action_clean,
    bulk_apply,
    bulk_filter_query,
)
from transfers.bulk.services import bulk_job_start
from workspaces.access import get_agent_access, staff_actor
from workspaces.selectors import AgentAccess

# Tells the notice above the table to look for the job that was just queued.
JOB_STARTED_EVENT = "bulkJobStarted"


@require_POST
@login_required
def contact_bulk(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """One bulk action on the selected rows, or (`scope=all`) on the whole view."""
    access = get_agent_access(request, agent_public_id)
    state = _return_state(request)
    action = request.POST.get("action", "")
    scope = request.POST.get("scope") or "selected"
    if action not in (*ACTION_LABELS, "merge") or scope not in ("selected", "all"):
        return HttpResponseBadRequest("Unknown bulk action.")
    if action == "merge":
        return _merge(request, access, state)
    actor = staff_actor(request, access)
    try:
        bulk = bulk_action_clean(agent=access.agent, actor=actor, action=action, data=request.POST)
        if scope == "all":
            return _start(request, access, state, bulk)
        ids = uuids(request.POST.getlist("id"))
        if not ids:
            raise ValidationFailed({"id": ["Select at least one contact first."]})
        if len(ids) > MAX_BULK:
            raise ValidationFailed(
                {"id": [f"Select at most {MAX_BULK:,} contacts, or select all matching."]}
            )
        mine = Contact.objects.filter(agent=access.agent, pk__in=ids).count()
        changed = bulk_apply(agent=access.agent, actor=actor, action=bulk, contact_ids=ids)
    except DomainError as exc:
        _notice(request, access, error_text(exc), error=True)
        return _back_to_table(request, access, state)
    undo = [str(pk) for pk in changed] if action == "delete" else None
    stash_notice(
        request, access.agent, bulk.done_text(len(changed), mine - len(changed)), undo_ids=undo
    )
    return _back_to_table(request, access, state)


def _notice(request: HttpRequest, access: AgentAccess, text: str, *, error: bool) -> None:
    stash_notice(request, access.agent, text)
    if error:
        request.session[NOTICE_KEY] = {**request.session[NOTICE_KEY], "kind": "error"}


def _start(
    request: HttpRequest, access: AgentAccess, state: QueryDict, bulk: BulkAction
) -> HttpResponse:
    """Queue the action on every contact of the view in `state` (its filters checked now,
    and read again when the job runs)."""
    agent = access.agent
    query = bulk_filter_query(state)
    definitions = {d.key: d for d in attribute_definitions(agent=agent)}
    filters = ContactFilterSet(QueryDict(query), agent=agent, definitions=definitions)
    filters.validated()
    total, exact = table_count(qs=filters.qs, filters=filters, agent=agent)
    if not total:
        raise ValidationFailed({"scope": ["No contact matches this view."]})
    bulk_job_start(
        BackgroundRequest(
            agent=agent,
            user=request.user,
            action=bulk,
            query=query,
            estimate=total,
            estimate_exact=exact,
        )
    )
    if request.htmx:
        return trigger_client_event(_back_to_table(request, access, state), JOB_STARTED_EVENT)
    words = f"{total:,}" if exact else f"about {total:,}"
    _notice(request, access, f"{bulk.summary}: started on {words} contacts.", error=False)
    return _back_to_table(request, access, state)


def _merge(request: HttpRequest, access: AgentAccess, state: QueryDict) -> HttpResponse:
    """Two selected contacts open the merge preview; the one to keep is the more trusted,
    then the one with an external id, then the older (the preview can swap them)."""
    ids = list(dict.fromkeys(uuids(request.POST.getlist("id"))))
    pair = list(Contact.objects.filter(agent=access.agent, pk__in=ids[:3], deleted_at=None))
    if len(ids) != 2 or len(pair) != 2:
        _notice(request, access, "Select exactly two contacts to merge.", error=True)
        return _back_to_table(request, access, state)
    primary, secondary = sorted(pair, key=_keep_first)
    url = reverse("contacts:merge", kwargs={"agent_public_id": access.agent.public_id})
    target = f"{url}?primary={primary.pk}&secondary={secondary.pk}"
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


def _keep_first(contact: Contact) -> tuple[Any, ...]:
    return (-IDENTITY_RANK[contact.identity], contact.external_id is None, contact.created_at)
