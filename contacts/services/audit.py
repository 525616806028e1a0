"""What every contact write shares: the result it returns, the audit trail, and the
locked read-change-audit step of tag and Stripe changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from contacts.models import (
    AuditEvent,
    Contact,
    Identity,
)
from contacts.signals import ChangeEntry, changes_announce
from core.actors import Actor
from core.errors import (
    ForbiddenError,
)


@dataclass
class ContactWrite:
    """What a write did: the contact as saved, whether it was new, and each field's change."""

    contact: Contact
    created: bool = False
    changes: dict[str, list[Any]] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    # Upsert by a signed identify: "adopted" (an existing contact took the external id),
    # "several" (more than one could have been: none was), or "".
    adoption: str = ""
    # The upsert found the contact by marking it seen (`contact_upsert(seen_at=...)`).
    seen: bool = False

    @property
    def changed(self) -> bool:
        return self.created or bool(self.changes)

    @property
    def outcome(self) -> str:
        if self.created:
            return "created"
        return "updated" if self.changes else "unchanged"


def audit(
    *, contact: Contact, actor: Actor, action: str, changes: dict[str, Any] | None = None
) -> AuditEvent:
    """One entry in the contact's history: who (actor), what (action), before -> after.
    Announced to `contacts_changed` receivers (webhooks) in the same transaction."""
    event = AuditEvent.objects.create(
        agent_id=contact.agent_id,
        contact_id=contact.pk,
        action=action,
        channel=actor.channel,
        actor_label=actor.label[:255],
        actor_user_id=actor.user_id,
        changes=changes or {},
    )
    changes_announce(
        agent_id=contact.agent_id,
        entries=[ChangeEntry(contact.pk, str(action), event.changes, contact)],
    )
    return event


def audit_many(
    *,
    agent_id: int,
    actor: Actor,
    action: str,
    changes_by_contact: Mapping[Any, dict[str, Any] | None],
    at: datetime | None = None,
) -> None:
    """The same action by one actor on many contacts (bulk actions, moved conversations):
    one history entry per contact, written in batches."""
    at = at or timezone.now()
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                agent_id=agent_id,
                contact_id=contact_id,
                action=action,
                channel=actor.channel,
                actor_label=actor.label[:255],
                actor_user_id=actor.user_id,
                changes=changes or {},
                created_at=at,
            )
            for contact_id, changes in changes_by_contact.items()
        ],
        batch_size=1000,
    )
    changes_announce(
        agent_id=agent_id,
        entries=[
            ChangeEntry(contact_id, str(action), changes or {})
            for contact_id, changes in changes_by_contact.items()
        ],
        source="bulk" if len(changes_by_contact) > 1 else "",
    )


def check_may_change(contact: Contact, actor: Actor) -> None:
    if contact.identity == Identity.VERIFIED and not actor.trusted:
        raise ForbiddenError("This contact is verified; an unverified caller cannot change it.")


def related_write(contact: Contact, actor: Actor, change_key: str, apply) -> ContactWrite:
    with transaction.atomic():
        locked = Contact.objects.select_for_update().select_related("agent").get(pk=contact.pk)
        check_may_change(locked, actor)
        change = apply(locked)
        changes = {change_key: change} if change else {}
        if changes:
            locked.updated_at = timezone.now()
            locked.save(update_fields=["updated_at"])
            audit(contact=locked, actor=actor, action=AuditEvent.Action.UPDATED, changes=changes)
        return ContactWrite(contact=locked, changes=changes)


def audit_relabel(*, agent_id: int, old: str, new: str) -> int:
    """Rename an actor in the agent's history (an import whose file name named an erased
    person); returns how many entries changed."""
    return AuditEvent.objects.filter(agent_id=agent_id, actor_label=old[:255]).update(
        actor_label=new[:255]
    )
