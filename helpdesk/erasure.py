"""Erasure in the help desk: the person's transcripts and subjects, redacted and detached."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from contacts.models import Contact
from core.redaction import Redactor
from helpdesk.models import Conversation, Message
from identity.models import VisitorSession


def conversations_anonymize(
    sender: Any, *, contact: Contact, redactor: Redactor, **kwargs: Any
) -> dict[str, int]:
    """Scrub the person's transcripts and subjects and detach them; their own conversations
    and the anonymous ones their visitor sessions started. (Receives `contact_erasing`.)"""
    sessions = list(VisitorSession.objects.filter(contact=contact).values_list("pk", flat=True))
    conversations = list(
        Conversation.objects.filter(
            Q(contact=contact) | Q(contact__isnull=True, visitor_session_id__in=sessions)
        )
    )
    batch: list[Message] = []
    messages = Message.objects.filter(conversation__in=conversations).only("id", "body")
    for message in messages.iterator(chunk_size=2000):
        body = redactor.scrub(message.body)
        if body != message.body:
            message.body = body
            batch.append(message)
        if len(batch) >= 1000:
            Message.objects.bulk_update(batch, ["body"])
            batch = []
    if batch:
        Message.objects.bulk_update(batch, ["body"])
    for conversation in conversations:
        conversation.subject = redactor.scrub(conversation.subject)
        conversation.contact = None
        conversation.visitor_session = None
        conversation.contact_erased = True
    Conversation.objects.bulk_update(
        conversations, ["subject", "contact", "visitor_session", "contact_erased"], batch_size=1000
    )
    return {"conversations_anonymized": len(conversations)}
