"""From a change to the outbox, in the change's own transaction (a transactional outbox).

The lower apps send signals inside the transaction that writes a change (contacts:
`contacts_changed`, the help desk: `conversation_changed`, transfers: `import_completed`).
The receivers here turn them into `WebhookMessage` rows and one `WebhookDelivery` per
subscribed endpoint. If the change rolls back, so do they; if it commits, the worker will
deliver them. An agent without an endpoint pays one indexed query per change.

Which changes are events:
- `contact.updated` only when a field of the contact's JSON, an attribute, a tag or a Stripe
  account changed; `changes` keeps just those keys, as {key: [before, after]} (a bulk
  action's "tags_added"/"tags_removed" become "tags" like any other tag change). A change of
  last/first seen, notes or moved conversations alone is no event.
- `contact.identified` beside it when the identity level rose.
- `contact.restored` before it when the same write brought a deleted contact back (an
  upsert of its external id).
- Archived attributes are left out of the contact and of `changes`, as the API leaves them
  out by default; a change of an archived attribute alone is no event.
- An erased contact's event carries its id only.

One write of one contact gives one message per event, keyed by the contact. Bulk operations
(an import batch, a bulk action) send their contacts in messages of up to BATCH_SIZE:
`data.contacts` is a list of what a single message's `data` holds.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from typing import Any

import orjson
from django.db import connection
from django.utils import timezone

from attributes.models import AttributeDefinition
from contacts.models import IDENTITY_RANK, AuditEvent
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


# What a bulk action records instead of "tags": the names it added to or removed from each.
TAG_DELTAS = ("tags_added", "tags_removed")


def meaningful_changes(
    changes: dict[str, Any], visible: Container[str] | None = None
) -> dict[str, Any]:
    """The part of an audit entry's changes a webhook reports; attributes outside `visible`
    (archived ones) are left out when it is given."""
    return {
        key: value
        for key, value in changes.items()
        if key in CONTACT_FIELDS
        or key == "tags"
        or key in TAG_DELTAS
        or key.startswith("stripe_accounts")
        or (key.startswith("attributes.") and (visible is None or key.split(".", 1)[1] in visible))
    }


def tags_before_after(changes: dict[str, Any], tags_now: list[str]) -> dict[str, Any]:
    """`changes` with a bulk action's tag deltas as "tags": [before, after], `after` being
    the contact's tags as the same transaction left them."""
    if not any(key in changes for key in TAG_DELTAS):
        return changes
    added = {name.casefold() for name in changes.get("tags_added") or []}
    removed = [name for name in changes.get("tags_removed") or [] if name not in tags_now]
    before = [name for name in tags_now if name.casefold() not in added] + removed
    out = {key: value for key, value in changes.items() if key not in TAG_DELTAS}
    out["tags"] = [sorted(before, key=str.casefold), tags_now]
    return out


def restored(changes: dict[str, Any]) -> bool:
    """Whether a write took the contact out of the bin (deleted_at: [a time, None])."""
    change = changes.get("deleted_at")
    return isinstance(change, list) and len(change) == 2 and bool(change[0]) and not change[1]


def identity_rose(changes: dict[str, Any]) -> bool:
    before, after = (changes.get("identity") or [None, None])[:2]
    if before is None or after is None:
        return False
    return IDENTITY_RANK.get(after, 0) > IDENTITY_RANK.get(before, 0)


def contact_events(
    entry: ChangeEntry, visible: Container[str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(event type, what the event says besides the contact) for one audit entry; `visible`
    are the attribute keys an event may show (None: all)."""
    action = entry.action
    if action == AuditEvent.Action.UPDATED:
        events: list[tuple[str, dict[str, Any]]] = []
        if restored(entry.changes):
            events.append(("contact.restored", {}))
        changes = meaningful_changes(entry.changes, visible)
        if changes:
            events.append(("contact.updated", {"changes": changes}))
        if identity_rose(changes):
            events.append(("contact.identified", {"identity": changes["identity"]}))
        return events
    if action == AuditEvent.Action.MERGED:
        merged = (entry.changes.get("merged_contact") or [None])[0] or {}
        changes = meaningful_changes(entry.changes, visible)
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
    """The agent's endpoints that are on. On PostgreSQL they are read FOR KEY SHARE, the
    lock the deliveries' foreign key takes anyway, only now instead of at commit: an
    endpoint being deleted meanwhile waits for this transaction, and its cascade then sees
    the deliveries written here (otherwise they would point at a deleted row at commit)."""
    endpoints = WebhookEndpoint.objects.filter(agent_id=agent_id, enabled=True).only("id", "events")
    if connection.vendor != "postgresql":
        return list(endpoints)
    sql, params = endpoints.query.sql_with_params()
    return list(WebhookEndpoint.objects.raw(f"{sql} FOR KEY SHARE", params))


def envelope(message: WebhookMessage, data: dict[str, Any]) -> str:
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
    events: Iterable[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]],
) -> list[WebhookMessage]:
    """Write (event type, ordering key, data, draft) as messages, each with a delivery to
    every endpoint that wants it; events no endpoint wants are not written. A message has
    its data now, or a draft `webhooks.rendering` makes the data of when it is first sent."""
    now = timezone.now()
    messages, targets = [], []
    for event_type, ordering_key, data, draft in events:
        wanted = [e for e in endpoints if e.wants(event_type)]
        if not wanted:
            continue
        message = WebhookMessage(
            agent_id=agent_id,
            event_type=event_type,
            ordering_key=ordering_key,
            draft=draft,
            created_at=now,
        )
        if data is not None:
            message.body = envelope(message, data)
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


def visible_attributes(agent_id: int) -> set[str]:
    """The attribute keys the API shows by default: those of the agent's live definitions."""
    return set(
        AttributeDefinition.objects.filter(agent_id=agent_id, archived=False).values_list(
            "key", flat=True
        )
    )


def _touches_attributes(entries: Sequence[ChangeEntry]) -> bool:
    return any(key.startswith("attributes.") for e in entries for key in e.changes)


def on_contacts_changed(
    sender: Any, *, agent_id: int, entries: Sequence[ChangeEntry], source: str, **kwargs: Any
) -> None:
    """Drafts, not bodies: the contacts' JSON is read when the message is first sent, out of
    this transaction (an import batch pays for ids and changes only)."""
    endpoints = _subscribed(agent_id)
    if not endpoints:
        return
    # Which attributes are archived only matters when an attribute changed.
    visible = visible_attributes(agent_id) if _touches_attributes(entries) else None
    wanted = [
        (entry, event_type, extra)
        for entry in entries
        for event_type, extra in contact_events(entry, visible)
        if any(e.wants(event_type) for e in endpoints)
    ]
    if not wanted:
        return

    def item(entry: ChangeEntry, event_type: str, extra: dict[str, Any]) -> dict[str, Any]:
        if event_type == "contact.erased":
            return {"id": str(entry.contact_id), "erased": True}
        return {"id": str(entry.contact_id), "extra": extra}

    if not source and len({entry.contact_id for entry in entries}) == 1:
        # One write of one contact: each event on its own, in the contact's order (an
        # update and the identification it brought are two messages, not a batch).
        events = [
            (
                event_type,
                str(entry.contact_id),
                None,
                {"items": [item(entry, event_type, extra)], "batch": False},
            )
            for entry, event_type, extra in wanted
        ]
    else:
        # Bulk: one message per event type and BATCH_SIZE contacts, ordered among the
        # operation's own messages.
        by_type: dict[str, list[dict[str, Any]]] = {}
        for entry, event_type, extra in wanted:
            by_type.setdefault(event_type, []).append(item(entry, event_type, extra))
        key = source or "bulk"
        events = [
            (
                event_type,
                key,
                None,
                {"items": items[i : i + BATCH_SIZE], "batch": True, "source": key},
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
        events=[(f"conversation.{change}", key, data, None)],
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
        events=[("import.completed", f"import:{job.pk}", {"import": import_summary(job)}, None)],
    )


def connect() -> None:
    contacts_changed.connect(on_contacts_changed, dispatch_uid="webhooks.contacts")
    conversation_changed.connect(on_conversation_changed, dispatch_uid="webhooks.conversations")
    import_completed.connect(on_import_completed, dispatch_uid="webhooks.imports")
