"""Erasure in the outbox: what the delivery log keeps of the person goes with them.

Messages about the person (keyed by their contact id, or by a contact merged into them:
their contact and conversation events) are deleted with their deliveries, sent or not: a
pending one will not carry their data out after the erasure. Batches of a bulk operation
lose the person's entries, in their body or, not sent yet, in their draft (a batch left
empty goes). Any other message naming them (an
anonymous conversation's subject) is scrubbed like a transcript. The `contact.erased` event
itself is written after this, with the contact's id only."""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import Any

import orjson
from django.db.models import Q

from contacts.models import Contact, MergedContact
from core.redaction import Redactor
from webhooks.models import WebhookMessage


def outbox_forget(
    sender: Any, *, contact: Contact, redactor: Redactor, **kwargs: Any
) -> dict[str, int]:
    """Receives `contact_erasing`."""
    ids = {str(contact.pk)} | {
        str(pk) for pk in MergedContact.objects.filter(into=contact).values_list("pk", flat=True)
    }
    messages = WebhookMessage.objects.filter(agent_id=contact.agent_id)
    deleted = messages.filter(ordering_key__in=ids).count()
    messages.filter(ordering_key__in=ids).delete()
    changed = 0
    # Batches not sent yet are drafts: ids and changes, the person's in their own items.
    for message in messages.filter(draft__isnull=False).only("id", "draft"):
        items = message.draft.get("items") or []
        kept = [i for i in items if str(i.get("id")) not in ids]
        if not kept:
            message.delete()
            deleted += 1
        elif len(kept) != len(items):
            WebhookMessage.objects.filter(pk=message.pk).update(
                draft={**message.draft, "items": kept}
            )
            changed += 1
    in_batches = messages.filter(reduce(or_, (Q(body__contains=i) for i in ids)))
    for message in in_batches.only("id", "body").iterator(chunk_size=200):
        payload = orjson.loads(message.body)
        items = (payload.get("data") or {}).get("contacts")
        if not isinstance(items, list):
            continue
        kept = [i for i in items if str((i.get("contact") or {}).get("id")) not in ids]
        if not kept:
            message.delete()
            deleted += 1
        elif len(kept) != len(items):
            payload["data"]["contacts"] = kept
            WebhookMessage.objects.filter(pk=message.pk).update(body=orjson.dumps(payload).decode())
            changed += 1
    if redactor.db_regex:
        for message in messages.filter(body__iregex=redactor.db_regex).only("id", "body"):
            payload = orjson.loads(message.body)
            scrubbed = redactor.scrub_json(payload)
            if scrubbed != payload:
                body = orjson.dumps(scrubbed).decode()
                WebhookMessage.objects.filter(pk=message.pk).update(body=body)
                changed += 1
    counts = {"webhook_messages_deleted": deleted, "webhook_messages_redacted": changed}
    return {name: count for name, count in counts.items() if count}
