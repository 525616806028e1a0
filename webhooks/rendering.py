"""A contact event's body, made from its draft when it is first sent or shown.

The draft holds the contacts' ids and what changed; the body adds each contact's JSON as
the API shows it at that moment (a contact erased meanwhile is its id alone), with archived
attributes left out of the contact and of `changes`. Rendering happens once per message,
under a row lock, so every attempt and every endpoint gets the same bytes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable
from typing import Any

from django.db import transaction

from contacts.serialization import contacts_to_dicts
from webhooks.events import envelope, tags_before_after, visible_attributes
from webhooks.models import WebhookMessage


def _item_data(
    item: dict[str, Any], contacts: dict[str, dict[str, Any]], visible: Container[str]
) -> dict[str, Any]:
    contact = contacts.get(item["id"]) if not item.get("erased") else None
    if contact is None:
        return {"contact": {"id": item["id"]}}
    extra = dict(item.get("extra") or {})
    if "changes" in extra:
        changes = {
            key: value
            for key, value in extra["changes"].items()
            if not key.startswith("attributes.") or key.split(".", 1)[1] in visible
        }
        extra["changes"] = tags_before_after(changes, contact["tags"])
    return {"contact": contact, **extra}


def _render(messages: list[WebhookMessage]) -> None:
    by_agent: dict[int, list[WebhookMessage]] = defaultdict(list)
    for message in messages:
        by_agent[message.agent_id].append(message)
    for agent_id, group in by_agent.items():
        visible = visible_attributes(agent_id)
        ids = {
            item["id"]
            for message in group
            for item in message.draft["items"]
            if not item.get("erased")
        }
        found = contacts_to_dicts(ids, visible_keys=visible)
        contacts = {str(pk): data for pk, data in found.items()}
        for message in group:
            draft = message.draft
            items = [_item_data(item, contacts, visible) for item in draft["items"]]
            data = (
                {"contacts": items, "source": draft.get("source", "")}
                if draft.get("batch")
                else items[0]
            )
            message.body = envelope(message, data)
            message.draft = None


def messages_render(messages: Iterable[WebhookMessage]) -> None:
    """Give every message its body (those still drafts are rendered, once); the instances
    passed in are updated."""
    pending: dict[int, list[WebhookMessage]] = defaultdict(list)
    for message in messages:
        if message.draft is not None:
            pending[message.pk].append(message)
    if not pending:
        return
    with transaction.atomic():
        locked = list(
            WebhookMessage.objects.select_for_update()
            .filter(pk__in=list(pending), draft__isnull=False)
            .order_by("pk")
        )
        _render(locked)
        WebhookMessage.objects.bulk_update(locked, ["body", "draft"], batch_size=200)
    bodies = {m.pk: m.body for m in locked}
    # Rendered meanwhile by another worker: theirs is the body.
    missing = [pk for pk in pending if pk not in bodies]
    if missing:
        bodies.update(WebhookMessage.objects.filter(pk__in=missing).values_list("pk", "body"))
    for pk, instances in pending.items():
        for message in instances:
            message.body, message.draft = bodies[pk], None
