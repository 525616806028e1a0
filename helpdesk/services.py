"""Every write to conversations and messages: widget, staff replies and the bot alike.

Each write keeps the denormalized activity in step: the conversation's `last_message_at`
(the inbox sorts by it), the contact's `conversation_count`, and the contact's
`last_seen_at` when the visitor themself did something.

Activity counters and timestamps are not audited (like `contact_mark_seen`): they change
with every message and would drown the history of what people changed. The one contact
write made here, creating the anonymous contact of a visitor who has told us nothing, goes
through `contact_create` and is audited there.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from contacts.models import Contact, Identity
from contacts.services import contact_conversation_count_add, contact_create, contact_mark_seen
from core.actors import Actor
from core.errors import ValidationFailed
from helpdesk.models import Conversation, Message
from helpdesk.signals import conversation_changed
from identity.models import VisitorSession
from identity.sessions import visitor_session_touch
from workspaces.models import Agent

MESSAGE_MAX_LENGTH = 10_000
SUBJECT_LENGTH = 120


def clean_message_body(body: object, *, field: str = "body") -> str:
    """The message text as stored, or a ValidationFailed naming the field and why."""
    if not isinstance(body, str):
        raise ValidationFailed({field: ["The message must be a string."]})
    text = body.strip()
    if not text:
        raise ValidationFailed({field: ["The message is empty."]})
    if len(text) > MESSAGE_MAX_LENGTH:
        raise ValidationFailed(
            {
                field: [
                    f"The message is {len(text)} characters long; "
                    f"the limit is {MESSAGE_MAX_LENGTH}."
                ]
            }
        )
    if "\x00" in text:
        raise ValidationFailed({field: ["The message may not contain NUL characters."]})
    return text


def _subject_from(text: str) -> str:
    line = " ".join(text.split())
    if len(line) <= SUBJECT_LENGTH:
        return line
    return line[: SUBJECT_LENGTH - 1].rstrip() + "…"


def conversation_start(
    *,
    agent: Agent,
    contact: Contact | None,
    visitor_session: VisitorSession | None = None,
    first_message: str | None = None,
    role: str = Message.Role.VISITOR,
    author=None,
) -> Conversation:
    """Open a conversation (optionally with its first message) and count it on the contact.

    `role` says who opened it; a conversation the visitor opens is visitor activity."""
    if contact is not None and contact.agent_id != agent.pk:
        raise ValueError("The contact belongs to another agent.")
    text = clean_message_body(first_message, field="message") if first_message else ""
    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.create(
            agent=agent,
            contact=contact,
            visitor_session=visitor_session,
            subject=_subject_from(text) if text else "",
            created_at=now,
            updated_at=now,
            last_message_at=now,
        )
        if contact is not None:
            contact_conversation_count_add(contact=contact)
        if text:
            Message.objects.create(
                conversation=conversation, role=role, body=text, author=author, created_at=now
            )
        if contact is not None and role == Message.Role.VISITOR:
            contact_mark_seen(contact=contact, at=now)
        conversation_changed.send(
            sender=Conversation, conversation=conversation, change="created", before=None
        )
    return conversation


def message_post(*, conversation: Conversation, role: str, body: object, author=None) -> Message:
    """Add a message; the conversation's activity moves forward, a visitor is seen, and a
    visitor or a support person writing into a closed conversation reopens it (a bot's
    automatic message does not)."""
    if role not in Message.Role.values:
        raise ValueError(f"Unknown message role {role!r}.")
    text = clean_message_body(body)
    with transaction.atomic():
        # One writer per conversation at a time, so last_message_at only moves forward and
        # a reopen cannot race a close.
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        now = timezone.now()
        message = Message.objects.create(
            conversation=locked, role=role, body=text, author=author, created_at=now
        )
        locked.last_message_at = max(locked.last_message_at, now)
        locked.updated_at = now
        fields = ["last_message_at", "updated_at"]
        if not locked.subject and role == Message.Role.VISITOR:
            locked.subject = _subject_from(text)
            fields.append("subject")
        reopens = role in (Message.Role.VISITOR, Message.Role.STAFF)
        if reopens and locked.status == Conversation.Status.CLOSED:
            locked.status = Conversation.Status.OPEN
            fields.append("status")
        locked.save(update_fields=fields)
        if "status" in fields:
            conversation_changed.send(
                sender=Conversation,
                conversation=locked,
                change="status_changed",
                before=Conversation.Status.CLOSED,
            )
        if role == Message.Role.VISITOR and locked.contact_id is not None:
            contact = locked.contact
            contact_mark_seen(contact=contact, at=now)
    for name in fields:
        setattr(conversation, name, getattr(locked, name))
    return message


def conversation_set_status(*, conversation: Conversation, status: str) -> Conversation:
    """Open, escalate or close a conversation."""
    if status not in Conversation.Status.values:
        choices = ", ".join(Conversation.Status.values)
        raise ValidationFailed({"status": [f"{status!r} is not one of {choices}."]})
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.status != status:
            before, locked.status = locked.status, status
            locked.updated_at = timezone.now()
            locked.save(update_fields=["status", "updated_at"])
            conversation_changed.send(
                sender=Conversation, conversation=locked, change="status_changed", before=before
            )
    conversation.status, conversation.updated_at = locked.status, locked.updated_at
    return conversation


def visitor_session_contact(*, session: VisitorSession) -> Contact:
    """The session's contact; a visitor who has told us nothing gets an anonymous contact,
    created once per session even when two widget calls race (the session row is locked)."""
    with transaction.atomic():
        # Lock the session row only (its contact is a nullable join PostgreSQL cannot lock).
        locked = (
            VisitorSession.objects.select_for_update(of=("self",))
            .select_related("agent")
            .get(pk=session.pk)
        )
        if locked.contact_id is None:
            created = contact_create(
                agent=locked.agent, actor=Actor.widget(), data={}, identity=Identity.ANONYMOUS
            )
            locked.contact = created.contact
            locked.created_contact = True
            locked.save(update_fields=["contact", "created_contact"])
    session.contact, session.created_contact = locked.contact, locked.created_contact
    return locked.contact


def widget_conversation_start(
    *, agent: Agent, session: VisitorSession, message: str | None = None
) -> Conversation:
    """A visitor starts a conversation from the widget, tied to their session's contact."""
    with transaction.atomic():
        contact = visitor_session_contact(session=session)
        conversation = conversation_start(
            agent=agent, contact=contact, visitor_session=session, first_message=message
        )
    visitor_session_touch(session=session)
    return conversation


def widget_message_post(
    *, session: VisitorSession, conversation: Conversation, body: object
) -> Message:
    """A visitor writes into one of their conversations."""
    message = message_post(conversation=conversation, role=Message.Role.VISITOR, body=body)
    visitor_session_touch(session=session)
    return message


def staff_reply(*, conversation: Conversation, user, body: object) -> Message:
    """A support person answers in the conversation."""
    return message_post(conversation=conversation, role=Message.Role.STAFF, body=body, author=user)


def bot_reply(*, conversation: Conversation, body: object) -> Message:
    """The agent's bot answers through the API."""
    return message_post(conversation=conversation, role=Message.Role.BOT, body=body)
