"""The attribute schema page (admins): create, edit, reorder, archive/restore, delete.

Every view asks for admin access again (`_admin`); staff get 403, other workspaces 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from attributes.forms import AttributeCreateForm, AttributeEditForm
from attributes.models import AttributeDefinition
from attributes.selectors import attribute_definitions
from attributes.services import (
    attribute_create,
    attribute_delete,
    attribute_move,
    attribute_reorder,
    attribute_set_archived,
    attribute_update,
    attribute_value_count,
)
from core.errors import DomainError
from workspaces.access import get_agent_access
from workspaces.selectors import AgentAccess


def _admin(request: HttpRequest, agent_public_id: str) -> AgentAccess:
    return get_agent_access(request, agent_public_id, admin=True)


def _definition(access: AgentAccess, key: str) -> AttributeDefinition:
    definition = AttributeDefinition.objects.filter(agent=access.agent, key=key).first()
    if definition is None:
        raise Http404("No such attribute.")
    return definition


def _schema_url(access: AgentAccess) -> str:
    return reverse("attributes:schema", kwargs={"agent_public_id": access.agent.public_id})


def _schema_context(access: AgentAccess, form: AttributeCreateForm | None = None) -> dict[str, Any]:
    definitions = attribute_definitions(agent=access.agent, include_archived=True)
    active = [d for d in definitions if not d.archived]
    return {
        "agent": access.agent,
        "active": active,
        "archived": [d for d in definitions if d.archived],
        "form": form or AttributeCreateForm(),
        "first_key": active[0].key if active else "",
        "last_key": active[-1].key if active else "",
        "reorder_url": reverse(
            "attributes:reorder", kwargs={"agent_public_id": access.agent.public_id}
        ),
    }


def _table_response(request: HttpRequest, access: AgentAccess) -> HttpResponse:
    """After a change on the list: the table partial for htmx, else back to the page."""
    if request.htmx:
        return render(request, "attributes/schema.html#attribute-table", _schema_context(access))
    return redirect(_schema_url(access))


@require_http_methods(["GET", "POST"])
@login_required
@vary_on_headers("HX-Request")
def schema(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """The agent's attributes; POST defines a new one."""
    access = _admin(request, agent_public_id)
    form = None
    status = 200
    if request.method == "POST":
        form = AttributeCreateForm(request.POST)
        if form.is_valid():
            try:
                definition = attribute_create(agent=access.agent, **form.service_kwargs())
            except DomainError as exc:
                form.add_errors(exc)
            else:
                messages.success(request, f"Added the attribute “{definition.label}”.")
                return redirect(_schema_url(access))
        status = 422
    return render(request, "attributes/schema.html", _schema_context(access, form), status=status)


@require_http_methods(["GET", "POST"])
@login_required
def edit(request: HttpRequest, agent_public_id: str, key: str) -> HttpResponse:
    """Change label, description, options (select) and the secure flag; key and type stay."""
    access = _admin(request, agent_public_id)
    definition = _definition(access, key)
    form = AttributeEditForm(request.POST or None, definition=definition)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                attribute_update(definition=definition, **form.service_kwargs())
            except DomainError as exc:
                form.add_errors(exc)
            else:
                messages.success(request, f"Saved “{definition.label}”.")
                return redirect(_schema_url(access))
        status = 422
    context = {
        "agent": access.agent,
        "definition": definition,
        "form": form,
        "schema_url": _schema_url(access),
    }
    return render(request, "attributes/edit.html", context, status=status)


@require_POST
@login_required
def archive(request: HttpRequest, agent_public_id: str, key: str) -> HttpResponse:
    """Hide from forms, columns and the API's default output; values are kept."""
    access = _admin(request, agent_public_id)
    definition = attribute_set_archived(definition=_definition(access, key), archived=True)
    if not request.htmx:
        messages.success(request, f"Archived “{definition.label}”. Its values are kept.")
    return _table_response(request, access)


@require_POST
@login_required
def restore(request: HttpRequest, agent_public_id: str, key: str) -> HttpResponse:
    access = _admin(request, agent_public_id)
    definition = attribute_set_archived(definition=_definition(access, key), archived=False)
    if not request.htmx:
        messages.success(request, f"Restored “{definition.label}”.")
    return _table_response(request, access)


@require_POST
@login_required
def move(request: HttpRequest, agent_public_id: str, key: str) -> HttpResponse:
    """Move one attribute up or down (the buttons beside each row)."""
    access = _admin(request, agent_public_id)
    direction = request.POST.get("direction")
    if direction not in ("up", "down"):
        return HttpResponseBadRequest("direction must be up or down.")
    attribute_move(definition=_definition(access, key), offset=-1 if direction == "up" else 1)
    return _table_response(request, access)


@require_POST
@login_required
def reorder(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """Save a whole new order (drag and drop sends every key in its new place)."""
    access = _admin(request, agent_public_id)
    keys = request.POST.getlist("key")
    if not keys:
        return HttpResponseBadRequest("Send the keys in their new order.")
    try:
        attribute_reorder(agent=access.agent, keys=keys)
    except DomainError as exc:
        return HttpResponseBadRequest(exc.message)
    return _table_response(request, access)


@require_http_methods(["GET", "POST"])
@login_required
def delete(request: HttpRequest, agent_public_id: str, key: str) -> HttpResponse:
    """Confirm (saying how many contacts hold a value), then delete the definition and values."""
    access = _admin(request, agent_public_id)
    definition = _definition(access, key)
    if request.method == "POST":
        label = definition.label
        removed = attribute_delete(definition=definition)
        messages.success(
            request,
            f"Deleted “{label}” and its value on {removed:,} contact{'s' if removed != 1 else ''}.",
        )
        return redirect(_schema_url(access))
    context = {
        "agent": access.agent,
        "definition": definition,
        "count": attribute_value_count(definition=definition),
        "schema_url": _schema_url(access),
    }
    return render(request, "attributes/delete.html", context)
