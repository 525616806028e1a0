"""The help desk's part of what happens to contacts and visitors (connected in
HelpdeskConfig.ready): conversations follow merges, move with a visitor who signs in, are
anonymized by an erasure, appear in access exports and on the contact's page."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from contacts import panels, signals
from contacts.models import AuditEvent, Contact
from contacts.panels import Panel
from contacts.services import audit_many, contact_conversation_count_add
from core.actors import Actor
from core.times import iso
from helpdesk import erasure
from helpdesk.models import Conversation
from helpdesk.views import contact_history_panel
from identity.models import VisitorSession
from identity.signals import visitor_history_moving
from workspaces.models import Agent


def conversations_follow_merge(
    sender: Any, *, primary: Contact, secondary: Contact, actor: Actor, **kwargs: Any
) -> dict[str, Any] | None:
    moved = Conversation.objects.filter(contact=secondary).update(contact=primary)
    primary.conversation_count = Conversation.objects.filter(contact=primary).count()
    return {"conversations_moved": [None, moved]} if moved else None


def session_conversations_move(
    sender: Any,
    *,
    session: VisitorSession,
    source: Contact,
    target: Contact,
    actor: Actor,
    **kwargs: Any,
) -> None:
    """What this visitor wrote while attached to `source` (someone else's self-reported
    contact) goes with them to `target`; the rest of `source` stays."""
    moved = Conversation.objects.filter(visitor_session=session, contact=source).update(
        contact=target
    )
    if not moved:
        return
    contact_conversation_count_add(contact=source, delta=-moved)
    contact_conversation_count_add(contact=target, delta=moved)
    visitor = [None, session.visitor_id]
    audit_many(
        agent_id=target.agent_id,
        actor=actor,
        action=AuditEvent.Action.UPDATED,
        changes_by_contact={
            target.pk: {"conversations_moved": [None, moved], "visitor": visitor},
            source.pk: {"conversations_moved": [moved, None], "visitor": visitor},
        },
        at=timezone.now(),
    )


def conversations_export(sender: Any, *, contact: Contact, **kwargs: Any) -> dict[str, Any]:
    conversations = (
        Conversation.objects.filter(contact=contact)
        .order_by("created_at", "id")
        .prefetch_related("messages")
    )
    return {
        "conversations": [
            {
                "id": str(c.id),
                "status": c.status,
                "subject": c.subject,
                "created_at": iso(c.created_at),
                "messages": [
                    {"role": m.role, "body": m.body, "created_at": iso(m.created_at)}
                    for m in c.messages.all()
                ],
            }
            for c in conversations
        ]
    }


def conversations_panel(agent: Agent, contact: Contact) -> Panel:
    """The contact page's Conversations panel: the first page of the history, most recent
    activity first, each linking to the conversation page; its own links page and re-sort
    it in place (helpdesk:contact_conversations)."""
    return Panel(
        template="helpdesk/_contact_conversations.html",
        context=contact_history_panel(agent, contact),
    )


def connect() -> None:
    uid = "helpdesk"
    signals.contact_merging.connect(conversations_follow_merge, dispatch_uid=uid)
    signals.contact_erasing.connect(erasure.conversations_anonymize, dispatch_uid=uid)
    signals.contact_data_requested.connect(conversations_export, dispatch_uid=uid)
    visitor_history_moving.connect(session_conversations_move, dispatch_uid=uid)
    panels.register(conversations_panel)
