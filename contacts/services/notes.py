"""Notes on a contact: written by the team on the contact's page, edited by their author,
deleted by their author or an admin.

Each write leaves an entry in the contact's history naming the note by id only: the text
stays in the note, so deleting a note (or erasing the person) leaves none of it behind.
Notes follow a merge into the contact kept, and go with an erasure; other notes of the
agent that name the erased person by an email, phone, id or full name are redacted.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from contacts.models import NOTE_MAX_LENGTH, AuditEvent, Contact, Note
from contacts.services.audit import audit
from contacts.signals import contact_erasing, contact_merging
from core.actors import Actor, Channel
from core.errors import ConflictError, DomainError, ForbiddenError, ValidationFailed
from core.redaction import Redactor

# Invisible control characters (pasted from other tools) that no one can see to remove;
# PostgreSQL refuses NUL outright. Tabs and line breaks stay.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class NoteGone(DomainError):
    """The note was deleted (or its contact erased or merged) meanwhile."""

    code = "not_found"
    status = 404


def clean_note_body(raw: Any) -> str:
    """The text as stored: line breaks as \\n, no invisible controls, no surrounding blank
    space. ValidationFailed on `body` when nothing is left or it is too long."""
    text = raw if isinstance(raw, str) else ""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not text:
        raise ValidationFailed({"body": ["Write something in the note first."]})
    if len(text) > NOTE_MAX_LENGTH:
        raise ValidationFailed(
            {
                "body": [
                    f"A note can be at most {NOTE_MAX_LENGTH:,} characters; "
                    f"this one has {len(text):,}."
                ]
            }
        )
    return text


def _locked(contact: Contact, note_id: int | None, actor: Actor) -> tuple[Contact, Note | None]:
    """The contact (locked against a concurrent erasure or merge, not deleted) and its note
    `note_id`, for a team member."""
    if actor.channel != Channel.STAFF or actor.user_id is None:
        raise ForbiddenError("Notes are written by members of the team.")
    locked = Contact.objects.select_for_update().filter(pk=contact.pk).first()
    if locked is None:
        raise NoteGone("This contact no longer exists.")
    if locked.deleted_at is not None:
        raise ConflictError("This contact is deleted; restore it to change its notes.")
    if note_id is None:
        return locked, None
    note = Note.objects.select_for_update().filter(pk=note_id, contact_id=locked.pk).first()
    if note is None:
        raise NoteGone("That note was deleted in the meantime.")
    return locked, note


def _audit(contact: Contact, actor: Actor, change: str, before: Any, after: Any) -> None:
    # The note's id only: its text never enters the history.
    audit(
        contact=contact,
        actor=actor,
        action=AuditEvent.Action.UPDATED,
        changes={change: [before, after]},
    )


def note_create(*, contact: Contact, actor: Actor, body: Any) -> Note:
    """A new note on `contact` by the team member `actor`."""
    text = clean_note_body(body)
    with transaction.atomic():
        locked, _ = _locked(contact, None, actor)
        now = timezone.now()
        note = Note.objects.create(
            contact=locked,
            agent_id=locked.agent_id,
            author_id=actor.user_id,
            author_name=actor.label[:255],
            body=text,
            created_at=now,
            updated_at=now,
        )
        _audit(locked, actor, "note_added", None, note.pk)
    return note


def note_update(*, contact: Contact, note_id: int, actor: Actor, body: Any) -> Note:
    """The author's new text for their note (the same text again writes nothing)."""
    text = clean_note_body(body)
    with transaction.atomic():
        locked, note = _locked(contact, note_id, actor)
        if note.author_id != actor.user_id:
            raise ForbiddenError("Only the author of a note can edit it.")
        if note.body != text:
            note.body, note.updated_at = text, timezone.now()
            note.save(update_fields=["body", "updated_at"])
            _audit(locked, actor, "note_edited", note.pk, note.pk)
    return note


def note_delete(*, contact: Contact, note_id: int, actor: Actor) -> None:
    """Delete a note: its author may, and so may an admin of the workspace."""
    with transaction.atomic():
        locked, note = _locked(contact, note_id, actor)
        if note.author_id != actor.user_id and not actor.is_admin:
            raise ForbiddenError("Only the author of a note or an admin can delete it.")
        note.delete()
        _audit(locked, actor, "note_deleted", note_id, None)


def notes_follow_merge(
    sender: Any, *, primary: Contact, secondary: Contact, **kwargs: Any
) -> dict[str, Any] | None:
    """The merged-away contact's notes stay with the person, on the contact kept."""
    moved = Note.objects.filter(contact_id=secondary.pk).update(contact_id=primary.pk)
    return {"notes_moved_in": [None, moved]} if moved else None


def notes_erase(
    sender: Any, *, contact: Contact, redactor: Redactor, **kwargs: Any
) -> dict[str, Any] | None:
    """The person's notes go; the agent's other notes lose every mention of their keys
    (emails, phones, ids, full names), as failed import rows and tracebacks do."""
    deleted, _ = Note.objects.filter(contact_id=contact.pk).delete()
    redacted = 0
    if redactor.db_regex:
        mentions = (
            Note.objects.filter(agent_id=contact.agent_id, body__iregex=redactor.db_regex)
            .exclude(contact_id=contact.pk)
            .only("pk", "body")
        )
        for note in mentions.iterator(chunk_size=500):
            scrubbed = redactor.scrub(note.body, keys_only=True)
            if scrubbed != note.body:
                Note.objects.filter(pk=note.pk).update(body=scrubbed)
                redacted += 1
    record = {"notes_deleted": deleted, "notes_redacted": redacted}
    return {key: count for key, count in record.items() if count} or None


# Notes live in contacts, so they take their part in merges and erasures here rather than
# through an app above. Every merge and erasure runs from a module of this package, whose
# __init__ imports this one first: the receivers are connected before either can run.
contact_merging.connect(notes_follow_merge, sender=Contact, dispatch_uid="contacts.notes")
contact_erasing.connect(notes_erase, sender=Contact, dispatch_uid="contacts.notes")
