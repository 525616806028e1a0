"""The contact page's Notes card: a page of notes as the template shows them, and note
entries of the history worded as what happened ("Note added", never the text)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.urls import reverse

from contacts.display import HistoryEntry
from contacts.models import NOTE_MAX_LENGTH, AuditEvent, Contact
from contacts.selectors import contact_notes_page
from core.plain_text import plain_text_html

NOTE_ACTIONS = {
    "note_added": "Note added",
    "note_edited": "Note edited",
    "note_deleted": "Note deleted",
}


def notes_card(
    *,
    agent,
    contact: Contact,
    user_id: int,
    is_admin: bool,
    cursor: str | None = None,
    failed: dict[int, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """A page of notes with what this user may do to each (edit: the author; delete: the
    author or an admin), and links to older notes and back to the newest. `failed` keeps a
    refused edit open with its text: {note id: (text, error)}."""
    notice = ""
    try:
        page = contact_notes_page(contact=contact, cursor=cursor)
    except ValueError as exc:
        notice, cursor = str(exc), None
        page = contact_notes_page(contact=contact)
    kwargs = {"agent_public_id": agent.public_id, "contact_id": contact.pk}
    detail = reverse("contacts:detail", kwargs=kwargs)
    rows = []
    for note in page.items:
        mine = note.author_id is not None and note.author_id == user_id
        value, error = (failed or {}).get(note.pk, (note.body, ""))
        rows.append(
            {
                "note": note,
                "html": plain_text_html(note.body),
                "url": reverse("contacts:note", kwargs={**kwargs, "note_id": note.pk}),
                "can_edit": mine and not contact.is_deleted,
                "can_delete": (mine or is_admin) and not contact.is_deleted,
                "value": value,
                "error": error,
            }
        )
    return {
        "notes": rows,
        "notes_total": page.total,
        "notes_notice": notice,
        "notes_cursor": cursor or "",
        "notes_older_url": f"{detail}?notes={page.older_cursor}" if page.older_cursor else "",
        "notes_newest_url": detail if not page.first else "",
        "notes_add_url": reverse("contacts:notes", kwargs=kwargs),
        "note_max_length": NOTE_MAX_LENGTH,
        "note_max_text": f"{NOTE_MAX_LENGTH:,}",
    }


def note_history(events: Sequence[AuditEvent], entries: list[HistoryEntry]) -> list[HistoryEntry]:
    """History entries of note writes read as "Note added by …" (they hold the note's id)."""
    for event, entry in zip(events, entries, strict=True):
        changes = event.changes if isinstance(event.changes, dict) else {}
        label = NOTE_ACTIONS.get(next(iter(changes), "")) if len(changes) == 1 else None
        if label and event.action == AuditEvent.Action.UPDATED:
            entry.action, entry.action_label, entry.changes = "note", label, []
    return entries
