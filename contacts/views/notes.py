"""Notes on the contact page: add, edit (the author), delete (the author or an admin).

htmx gets back the Notes card plus the history (it gained an entry); without JavaScript a
write redirects to the contact page, and a refused note comes back on the whole page with
its text, so nothing typed is lost either way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from contacts.models import Contact
from contacts.services import note_create, note_delete, note_update
from contacts.services.notes import NoteGone
from contacts.views.common import error_text
from contacts.views.contact import contact_for, detail_page, detail_url, with_history
from core.errors import DomainError, ForbiddenError, ValidationFailed
from workspaces.access import staff_actor
from workspaces.selectors import AgentAccess


@require_POST
@login_required
def note_add(request: HttpRequest, agent_public_id: str, contact_id: Any) -> HttpResponse:
    access, contact = contact_for(request, agent_public_id, contact_id)
    body = request.POST.get("body", "")
    try:
        note_create(contact=contact, actor=staff_actor(request, access), body=body)
    except DomainError as exc:
        return _refused(request, access, contact, exc, extra={"note_value": body})
    return _done(request, access, contact, "Note added.")


@require_POST
@login_required
def note_change(
    request: HttpRequest, agent_public_id: str, contact_id: Any, note_id: int
) -> HttpResponse:
    """Save the author's edit, or delete the note (the `delete` button)."""
    access, contact = contact_for(request, agent_public_id, contact_id)
    actor = staff_actor(request, access)
    body = request.POST.get("body", "")
    try:
        if request.POST.get("delete"):
            note_delete(contact=contact, note_id=note_id, actor=actor)
            return _done(request, access, contact, "Note deleted.")
        note_update(contact=contact, note_id=note_id, actor=actor, body=body)
    except DomainError as exc:
        failed = {note_id: (body, error_text(exc))} if isinstance(exc, ValidationFailed) else {}
        return _refused(request, access, contact, exc, extra={"notes_failed": failed})
    return _done(request, access, contact, "Note saved.")


def _back(request: HttpRequest, access: AgentAccess, contact: Contact) -> HttpResponse:
    """To the contact page, on the page of notes the form was on."""
    cursor = request.POST.get("notes", "")
    query = f"?{urlencode({'notes': cursor})}" if cursor else ""
    return redirect(f"{detail_url(access.agent, contact)}{query}#contact-notes")


def _done(request: HttpRequest, access: AgentAccess, contact: Contact, text: str) -> HttpResponse:
    if not request.htmx:
        messages.success(request, text)
        return _back(request, access, contact)
    cursor = request.POST.get("notes") or None
    return with_history(
        request, access, contact, "contact-notes", notes_status=text, notes_cursor=cursor
    )


def _refused(
    request: HttpRequest, access: AgentAccess, contact: Contact, exc: DomainError, *, extra: dict
) -> HttpResponse:
    """A note that cannot be written: 403 for someone else's note; a note gone meanwhile is
    404 on its own and, inside the page, the card as it now stands with why; a refused text
    comes back with its error beside it (422)."""
    if isinstance(exc, ForbiddenError):
        raise PermissionDenied(exc.message)
    if isinstance(exc, NoteGone) and not request.htmx:
        raise Http404(exc.message)
    if isinstance(exc, ValidationFailed):
        if "notes_failed" not in extra:
            extra["note_error"] = error_text(exc)
        status = 422
    else:
        extra = {"notes_notice": exc.message}
        status = 409
    extra["notes_cursor"] = request.POST.get("notes") or None
    if not request.htmx:
        if status == 422:
            return detail_page(request, access, contact, status=status, **extra)
        messages.error(request, exc.message)
        return _back(request, access, contact)
    return with_history(request, access, contact, "contact-notes", status=status, **extra)
