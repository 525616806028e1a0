"""Soft delete and restore, one contact or many (the table's bulk bar)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from contacts.models import (
    AuditEvent,
    Contact,
)
from contacts.services.audit import audit, audit_many, check_may_change
from core.actors import Actor
from workspaces.models import Agent


def contact_soft_delete(*, contact: Contact, actor: Actor) -> Contact:
    """Hide the contact from default views; conversations are kept; undo with restore."""
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        check_may_change(locked, actor)
        if locked.deleted_at is None:
            now = timezone.now()
            locked.deleted_at = now
            locked.updated_at = now
            locked.save(update_fields=["deleted_at", "updated_at"])
            audit(contact=locked, actor=actor, action=AuditEvent.Action.DELETED)
        return locked


def contacts_soft_delete_bulk(*, agent: Agent, actor: Actor, contact_ids: Iterable[Any]) -> int:
    """Soft-delete many contacts (bulk action); returns how many were live."""
    return _set_deleted_bulk(agent, actor, contact_ids, deleted=True)


def contact_restore(*, contact: Contact, actor: Actor) -> Contact:
    """Undo a soft delete."""
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        if locked.deleted_at is not None:
            locked.deleted_at = None
            locked.updated_at = timezone.now()
            locked.save(update_fields=["deleted_at", "updated_at"])
            audit(contact=locked, actor=actor, action=AuditEvent.Action.RESTORED)
        return locked


def contacts_restore_bulk(*, agent: Agent, actor: Actor, contact_ids: Iterable[Any]) -> int:
    """Undo a (bulk) soft delete; returns how many contacts came back."""
    return _set_deleted_bulk(agent, actor, contact_ids, deleted=False)


def _set_deleted_bulk(agent: Agent, actor: Actor, contact_ids: Iterable[Any], *, deleted: bool):
    with transaction.atomic():
        ids = list(
            Contact.objects.select_for_update()
            .filter(agent=agent, pk__in=list(contact_ids), deleted_at__isnull=deleted)
            .values_list("pk", flat=True)
        )
        now = timezone.now()
        Contact.objects.filter(pk__in=ids).update(
            deleted_at=now if deleted else None, updated_at=now
        )
        audit_many(
            agent_id=agent.pk,
            actor=actor,
            action=AuditEvent.Action.DELETED if deleted else AuditEvent.Action.RESTORED,
            changes_by_contact=dict.fromkeys(ids),
            at=now,
        )
        return len(ids)
