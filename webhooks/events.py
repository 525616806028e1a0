"""From a change to the outbox, in the change's own transaction (a transactional outbox).

The lower apps send signals inside the transaction that writes a change (contacts:
`contacts_changed`, the help desk: `conversation_changed`, transfers: `import_completed`).
The receivers here turn them into `WebhookMessage` rows and one `WebhookDelivery` per
subscribed endpoint. If the change rolls back, so do they; if it commits, the worker will
deliver them. An agent without an endpoint pays one indexed query per change.

Which changes are events:
- `contact.updated` only when a field of the contact's JSON, an attribute, a tag or a Stripe
  account changed; `changes` keeps just those keys. A change of last/first seen, notes or
  moved conversations alone is no event.
- `contact.identified` beside it when the identity level rose.
- An erased contact's event carries its id only.

Bulk operations (an import batch, a bulk action) send their contacts in messages of up to
BATCH_SIZE: `data.contacts` is a list of what a single message's `data` holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from django.utils import timezone

from attributes.models import AttributeDefinition
from contacts.models import IDENTITY_RANK, AuditEvent, Contact
from contacts.serialization import contact_to_dict
from contacts.signals import ChangeEntry, contacts_changed
from core.times import iso
from helpdesk.models import Conversation
from helpdesk.signals import conversation_changed
from transfers.models import ContactImport
from transfers.signals import import_completed
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage

BATCH_SIZE = 100
# The keys of the contact's own JSON whose change is a contact.updated.
CONTACT_FIELDS = frozenset(
    {"external_id", "name", "email", "phone", "avatar_url", "company", "identity", "verified_at"}
)
ACTION_EVENTS = {
    AuditEvent.Action.CREATED: "contact.created",
    AuditEvent.Action.DELETED: "contact.deleted",
    AuditEvent.Action.RESTORED: "contact.restored",
    AuditEvent.Action.MERGED: "contact.merged",
    AuditEvent.Action.ERASED: "contact.erased",
}


def meaningful_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The part of an audit entry's changes a webhook reports."""
    return {
        key: value
        for key, value in changes.items()
        if key in CONTACT_FIELDS
        or key == "tags"
        or key.startswith(("attributes.", "stripe_accounts"))
    }


def identity_rose(changes: dict[str, Any]) -> bool:
    before, after = (changes.get("identity") or [None, None])[:2]
    if before is None or after is None:
        return False
    return IDENTITY_RANK.get(after, 0) > IDENTITY_RANK.get(before, 0)


def contact_events(entry: ChangeEntry) -> list[tuple[str, dict[str, Any]]]:
    """(event type, what the event says besides the contact) for one audit entry."""
    action = entry.action
    if action == AuditEvent.Action.UPDATED:
        changes = meaningful_changes(entry.changes)
        if not changes:
            return []
        events = [("contact.updated", {"changes": changes})]
        if identity_rose(changes):
            events.append(("contact.identified", {"identity": changes["identity"]}))
        return events
    if action == AuditEvent.Action.MERGED:
        merged = (entry.changes.get("merged_contact") or [None])[0] or {}
        changes = meaningful_changes(entry.changes)
        extra = {"merged_contact_id": merged.get("id"), "changes": changes}
        events = [("contact.merged", extra)]
        if identity_rose(changes):
            events.append(("contact.identified", {"identity": changes["identity"]}))
        return events
    if action == AuditEvent.Action.RESTORED:
        return [("contact.restored", {})]
    event = ACTION_EVENTS.get(action)
    return [(event, {})] if event else []


def _subscribed(agent_id: int) -> list[WebhookEndpoint]:
    return list(
        WebhookEndpoint.objects.filter(agent_id=agent_id, enabled=True).only("id", "events")
    )


def _body(message: WebhookMessage, data: dict[str, Any]) -> str:
    envelope = {
        "id": message.webhook_id,
        "type": message.event_type,
        "timestamp": iso(message.created_at),
        "data": data,
    }
    return orjson.dumps(envelope).decode()


def outbox_write(
    *,
    agent_id: int,
    endpoints: Sequence[WebhookEndpoint],
    events: Iterable[tuple[str, str, dict[str, Any]]],
) -> list[WebhookMessage]:
    """Write (event type, ordering key, data) as messages, each with a delivery to every
    endpoint that wants it; events no endpoint wants are not written."""
    now = timezone.now()
    messages, targets = [], []
    for event_type, ordering_key, data in events:
        wanted = [e for e in endpoints if e.wants(event_type)]
        if not wanted:
            continue
        message = WebhookMessage(
            agent_id=agent_id, event_type=event_type, ordering_key=ordering_key, created_at=now
        )
        message.body = _body(message, data)
        messages.append(message)
        targets.append(wanted)
    if not messages:
        return []
    WebhookMessage.objects.bulk_create(messages, batch_size=500)
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint_id=endpoint.pk,
                message=message,
                ordering_key=message.ordering_key,
                next_attempt_at=now,
                created_at=now,
            )
            for message, wanted in zip(messages, targets, strict=True)
            for endpoint in wanted
        ],
        batch_size=500,
    )
    return messages


# --- Contacts -----------------------------------------------------------------------------------


def _contacts_json(agent_id: int, ids: Iterable[Any]) -> dict[Any, dict[str, Any]]:
    archived = set(
        AttributeDefinition.objects.filter(agent_id=agent_id, archived=True).values_list(
            "key", flat=True
        )
    )
    found = Contact.objects.filter(agent_id=agent_id, pk__in=list(ids)).prefetch_related(
        "tags", "stripe_accounts"
    )
    out = {}
    for contact in found:
        data = contact_to_dict(contact)
        if archived:
            data["attributes"] = {k: v for k, v in data["attributes"].items() if k not in archived}
        out[contact.pk] = data
    return out


def on_contacts_changed(
    sender: Any, *, agent_id: int, entries: Sequence[ChangeEntry], source: str, **kwargs: Any
) -> None:
    endpoints = _subscribed(agent_id)
    if not endpoints:
        return
    wanted = [
        (entry, event_type, extra)
        for entry in entries
        for event_type, extra in contact_events(entry)
        if any(e.wants(event_type) for e in endpoints)
    ]
    if not wanted:
        return
    needs_json = {e.contact_id for e, t, _ in wanted if t != "contact.erased"}
    contacts = _contacts_json(agent_id, needs_json) if needs_json else {}

    def data(entry: ChangeEntry, event_type: str, extra: dict[str, Any]) -> dict[str, Any]:
        if event_type == "contact.erased":
            return {"contact": {"id": str(entry.contact_id)}}
        return {"contact": contacts.get(entry.contact_id, {"id": str(entry.contact_id)}), **extra}

    if len(wanted) == 1 and not source:
        entry, event_type, extra = wanted[0]
        events = [(event_type, str(entry.contact_id), data(entry, event_type, extra))]
    else:
        # Bulk: one message per event type and BATCH_SIZE contacts, ordered among the
        # operation's own messages.
        by_type: dict[str, list[dict[str, Any]]] = {}
        for entry, event_type, extra in wanted:
            by_type.setdefault(event_type, []).append(data(entry, event_type, extra))
        key = source or "bulk"
        events = [
            (
                event_type,
                key,
                {"contacts": items[i : i + BATCH_SIZE], "source": key},
            )
            for event_type, items in by_type.items()
            for i in range(0, len(items), BATCH_SIZE)
        ]
    outbox_write(agent_id=agent_id, endpoints=endpoints, events=events)


# --- Conversations and imports ------------------------------------------------------------------


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": str(conversation.pk),
        "contact_id": str(conversation.contact_id) if conversation.contact_id else None,
        "status": conversation.status,
        "subject": conversation.subject,
        "created_at": iso(conversation.created_at),
        "updated_at": iso(conversation.updated_at),
        "last_message_at": iso(conversation.last_message_at),
    }


def on_conversation_changed(
    sender: Any, *, conversation: Conversation, change: str, before: str | None, **kwargs: Any
) -> None:
    endpoints = _subscribed(conversation.agent_id)
    if not endpoints:
        return
    data: dict[str, Any] = {"conversation": conversation_json(conversation)}
    if change == "status_changed":
        data["status"] = [before, conversation.status]
    key = str(conversation.contact_id or conversation.pk)
    outbox_write(
        agent_id=conversation.agent_id,
        endpoints=endpoints,
        events=[(f"conversation.{change}", key, data)],
    )


def import_summary(job: ContactImport) -> dict[str, Any]:
    return {
        "id": str(job.pk),
        "status": job.status,
        "file_name": job.filename,
        "rows": job.total_rows,
        "counts": {
            "created": job.created_count,
            "updated": job.updated_count,
            "unchanged": job.unchanged_count,
            "failed": job.failed_count,
            "skipped": job.skipped_count,
        },
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }


def on_import_completed(sender: Any, *, job: ContactImport, **kwargs: Any) -> None:
    endpoints = _subscribed(job.agent_id)
    if not endpoints:
        return
    outbox_write(
        agent_id=job.agent_id,
        endpoints=endpoints,
        # After the import's own batches (same key), so a receiver sees them first.
        events=[("import.completed", f"import:{job.pk}", {"import": import_summary(job)})],
    )


def connect() -> None:
    contacts_changed.connect(on_contacts_changed, dispatch_uid="webhooks.contacts")
    conversation_changed.connect(on_conversation_changed, dispatch_uid="webhooks.conversations")
    import_completed.connect(on_import_completed, dispatch_uid="webhooks.imports")
