"""GDPR erasure of one contact: who the person is (contacts.identifiers), how they are
recognised in text (core.redaction)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.cache import caches
from django.db import transaction

from contacts.identifiers import person_identifiers
from contacts.models import AuditEvent, Contact
from contacts.services.audit import audit_many
from contacts.signals import collected, contact_erasing, contact_forgetting
from core.actors import Actor
from core.redaction import Redactor


def contact_erase(*, contact: Contact, actor: Actor) -> dict[str, Any]:
    """GDPR erasure: delete the contact and everything linked to it, remove or redact every
    stored copy of its identifiers, and keep only a PII-free record that an erasure
    happened. Returns that record's counts (e.g. conversations anonymized).

    The apps that store things about a contact do their part through `contact_erasing`
    (transcripts, import rows and files) and `contact_forgetting` (visitor sessions); what
    Django itself stores (staff sessions, the admin log, task tracebacks) is handled here."""
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        identifiers = person_identifiers(locked)
        redactor = Redactor(identifiers)
        record = collected(contact_erasing.send(sender=Contact, contact=locked, redactor=redactor))
        if redactor.has_keys:
            _forget_task_tracebacks(redactor)
        if redactor.mentions_anything:
            _forget_in_sessions(redactor)
        _forget_admin_log({str(locked.pk), *identifiers.merged_contact_ids})
        contact_forgetting.send(sender=Contact, contact=locked)
        AuditEvent.objects.filter(contact_id=locked.pk).delete()
        agent_id, contact_id = locked.agent_id, locked.pk
        locked.delete()
        # The record of the erasure keeps no personal data: who erased, and counts.
        audit_many(
            agent_id=agent_id,
            actor=actor,
            action=AuditEvent.Action.ERASED,
            changes_by_contact={contact_id: record},
        )
    return record


def _forget_task_tracebacks(redactor: Redactor) -> None:
    """Background task results keep the traceback of a failure, which may quote values
    (a database error names the row it refused)."""
    if not redactor.db_regex or not apps.is_installed("django_tasks_db"):
        return
    from django_tasks_db.models import DBTaskResult

    results = DBTaskResult.objects.filter(traceback__iregex=redactor.db_regex).only("traceback")
    for result in results.iterator(chunk_size=500):
        scrubbed = redactor.scrub(result.traceback, keys_only=True)
        if scrubbed != result.traceback:
            DBTaskResult.objects.filter(pk=result.pk).update(traceback=scrubbed)


def _forget_in_sessions(redactor: Redactor) -> None:
    """Staff sessions can hold a pending notice ("Zebulon Quixley was deleted. Undo") or
    flash messages naming the person: those entries go, the rest of the session stays."""
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store_class, "get_model_class"):
        return  # signed-cookie or cache-only sessions: nothing of them is stored here
    model = store_class.get_model_class()
    cache_prefix = getattr(store_class, "cache_key_prefix", None)
    store = store_class()
    rows = model.objects.values_list("session_key", "session_data")
    for session_key, session_data in rows.iterator(chunk_size=500):
        cleaned = _clean_session(store.decode(session_data), redactor)
        if cleaned is None:
            continue
        model.objects.filter(session_key=session_key).update(session_data=store.encode(cleaned))
        if cache_prefix:
            caches[settings.SESSION_CACHE_ALIAS].delete(cache_prefix + session_key)


def _clean_session(session: dict[str, Any], redactor: Redactor) -> dict[str, Any] | None:
    """The session without what mentions the person; None when nothing does."""
    from django.contrib.messages.storage.cookie import MessageDecoder, MessageEncoder

    cleaned: dict[str, Any] = {}
    for key, value in session.items():
        if key.startswith("_auth_user_"):
            cleaned[key] = value
            continue
        if key == "_messages" and isinstance(value, str):
            try:
                stored = json.loads(value, cls=MessageDecoder)
            except ValueError:
                stored = None
            if isinstance(stored, list):
                kept = [m for m in stored if not redactor.mentions(_message_text(m))]
                if len(kept) == len(stored):
                    cleaned[key] = value
                elif kept:
                    cleaned[key] = MessageEncoder().encode(kept)
                continue
        if not redactor.mentions(_text(value)):
            cleaned[key] = value
    return None if cleaned == session else cleaned


def _message_text(message: Any) -> str:
    return f"{getattr(message, 'message', message)} {getattr(message, 'extra_tags', '') or ''}"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _forget_admin_log(contact_ids: Iterable[str]) -> None:
    """The Django admin's change log names the contacts operators edited there."""
    if not apps.is_installed("django.contrib.admin"):
        return
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(Contact)
    LogEntry.objects.filter(content_type=content_type, object_id__in=list(contact_ids)).delete()
