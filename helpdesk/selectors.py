"""Every read of conversations a screen or endpoint needs, with related rows loaded."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Lower, Substr

from attributes.coercion import display_value
from attributes.selectors import attribute_definitions
from contacts.models import Contact, ContactTag, StripeAccount, Tag
from contacts.query.expressions import search_text_contains
from core.keyset import InvalidCursor, cursor_moment, cursor_uuid, decode_cursor, encode_cursor
from helpdesk.models import Conversation, Message
from workspaces.models import Agent

INBOX_PAGE_SIZE = 50
TRANSCRIPT_PAGE_SIZE = 200
WIDGET_MESSAGES_LIMIT = 500
SIDEBAR_OTHER_CONVERSATIONS = 10
PREVIEW_LENGTH = 160
MAX_SEARCH = 200
# Tags one inbox view can be narrowed by (the picker offers the agent's tags; a longer
# list only comes from a hand-made URL).
MAX_INBOX_TAGS = 20
CONTACT_CONVERSATIONS_PAGE_SIZE = 20


def parse_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


# --- Inbox ---------------------------------------------------------------------------------


@dataclass
class InboxPage:
    items: list[Conversation]
    next_cursor: str | None = None
    previous_cursor: str | None = None


def _encode_cursor(conversation: Conversation, direction: str) -> str:
    return encode_cursor({"t": conversation.last_message_at, "i": conversation.pk, "d": direction})


def decode_inbox_cursor(cursor: str) -> tuple[datetime, uuid.UUID, str]:
    """(last activity, id, direction) of a cursor; ValueError when it is not one of ours."""
    invalid = "The page link is not valid; showing the newest conversations."
    try:
        payload = decode_cursor(cursor, keys=("t", "i", "d"))
        moment, pk = cursor_moment(payload["t"]), cursor_uuid(payload["i"])
    except InvalidCursor:
        raise ValueError(invalid) from None
    if payload["d"] not in ("next", "prev"):
        raise ValueError(invalid)
    return moment, pk, payload["d"]


# The inbox's default view: what still needs someone.
ACTIVE = "active"
ACTIVE_STATUSES = (Conversation.Status.OPEN, Conversation.Status.ESCALATED)
ALL = "all"


@dataclass
class InboxTags:
    chosen: list[Tag] = field(default_factory=list)  # the agent's tags named, in that order
    unknown: list[str] = field(default_factory=list)  # names that are none of its tags


def inbox_tags_resolve(*, agent: Agent, names: Sequence[str]) -> InboxTags:
    """The agent's tags named in `names` (ignoring case) and the names that are not one of
    them. Looked up within the agent only: another workspace's tag is simply unknown here."""
    wanted: dict[str, str] = {}  # lower-cased -> as written, first spelling wins
    for raw in names:
        name = raw.strip()
        if name and len(wanted) < MAX_INBOX_TAGS:
            wanted.setdefault(name.lower(), name)
    # NUL cannot reach PostgreSQL and no tag holds one; a longer name than a tag's cannot be.
    max_length = Tag._meta.get_field("name").max_length
    lookup = [n for n in wanted.values() if "\x00" not in n and len(n) <= max_length]
    found: dict[str, Tag] = {}
    if lookup:
        # The exact spelling as well: SQLite's LOWER() leaves non-ASCII letters alone.
        match = Q(lname__in=[n.lower() for n in lookup]) | Q(name__in=lookup)
        for tag in Tag.objects.alias(lname=Lower("name")).filter(match, agent=agent):
            found[tag.name.lower()] = tag
    return InboxTags(
        chosen=[found[key] for key in wanted if key in found],
        unknown=[name for key, name in wanted.items() if key not in found],
    )


def inbox_queryset(
    *, agent: Agent, status: str = "", q: str = "", tag_ids: Sequence[int] = ()
) -> QuerySet[Conversation]:
    """The agent's conversations of one status (`active`: open and escalated; `all` or ""
    for every one), of contacts matching `q` (name, email, external id or phone) and
    carrying any of the tags `tag_ids`, with the contact and the latest message loaded."""
    qs = Conversation.objects.filter(agent=agent)
    if status == ACTIVE:
        qs = qs.filter(status__in=ACTIVE_STATUSES)
    elif status and status != ALL:
        qs = qs.filter(status=status)
    q = q.strip()[:MAX_SEARCH]
    if q:
        # The contact's lower-cased search haystack (and its search index). The trigram
        # index on PostgreSQL covers live contacts only, so search (like every default view)
        # leaves soft-deleted ones out.
        found = search_text_contains(q.lower(), contact="contact")
        qs = qs.filter(found, contact__deleted_at__isnull=True)
    if tag_ids:
        # Any of the tags: one semi-join probe of the (contact, tag) unique index per
        # conversation, so a contact with two of the tags still lists each conversation once.
        # The ids are literals (resolved by inbox_tags_resolve), which lets the planner read
        # how common each tag is, as the contacts table's tag filter does.
        qs = qs.filter(
            Exists(ContactTag.objects.filter(contact_id=OuterRef("contact_id"), tag_id__in=tag_ids))
        )
    latest = Message.objects.filter(conversation=OuterRef("pk")).order_by("-created_at", "-id")
    return qs.select_related("contact").annotate(
        last_message_body=Subquery(
            latest.annotate(preview=Substr("body", 1, PREVIEW_LENGTH)).values("preview")[:1]
        ),
        last_message_role=Subquery(latest.values("role")[:1]),
    )


def inbox_page(
    *,
    agent: Agent,
    status: str = "",
    q: str = "",
    tag_ids: Sequence[int] = (),
    cursor: str | None = None,
    size: int = INBOX_PAGE_SIZE,
) -> InboxPage:
    """One page of the inbox, newest activity first, paged by (last activity, id).

    The order matches the (agent[, status], -last_message_at, id) indexes, and the page
    boundary is an index range condition (`last_message_at <= t`) plus a tie-break on id,
    so a deep page costs what the first one does. ValueError for a bad cursor.
    """
    qs = inbox_queryset(agent=agent, status=status, q=q, tag_ids=tag_ids)
    reverse = False
    if cursor:
        moment, pk, direction = decode_inbox_cursor(cursor)
        reverse = direction == "prev"
        if reverse:
            qs = qs.filter(
                Q(last_message_at__gt=moment) | Q(last_message_at=moment, id__lt=pk),
                last_message_at__gte=moment,
            )
        else:
            qs = qs.filter(
                Q(last_message_at__lt=moment) | Q(last_message_at=moment, id__gt=pk),
                last_message_at__lte=moment,
            )
    ordering = ("last_message_at", "-id") if reverse else ("-last_message_at", "id")
    rows = list(qs.order_by(*ordering)[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    if reverse:
        rows.reverse()
    if not rows:
        return InboxPage(items=[])
    more_after = True if reverse else has_more
    more_before = has_more if reverse else bool(cursor)
    return InboxPage(
        items=rows,
        next_cursor=_encode_cursor(rows[-1], "next") if more_after else None,
        previous_cursor=_encode_cursor(rows[0], "prev") if more_before else None,
    )


# --- One conversation ------------------------------------------------------------------------


def conversation_get(*, agent: Agent, conversation_id: Any) -> Conversation:
    """One conversation of the agent with its contact; DoesNotExist for a malformed, foreign
    or unknown id."""
    pk = parse_uuid(conversation_id)
    if pk is None:
        raise Conversation.DoesNotExist
    return Conversation.objects.select_related("contact").get(agent=agent, pk=pk)


@dataclass
class Transcript:
    messages: list[Message]
    earlier_before: int | None = None  # message id to page back from, when there is more


def conversation_transcript(
    *, conversation: Conversation, before: int | None = None, size: int = TRANSCRIPT_PAGE_SIZE
) -> Transcript:
    """The newest `size` messages (before message `before`), oldest first, authors loaded."""
    qs = Message.objects.filter(conversation=conversation).select_related("author")
    if before is not None:
        # Message ids grow with time within a conversation: message_post inserts under a
        # lock on the conversation, so id order is the order messages were written.
        qs = qs.filter(id__lt=before)
    rows = list(qs.order_by("-created_at", "-id")[: size + 1])
    has_earlier = len(rows) > size
    rows = rows[:size]
    rows.reverse()
    return Transcript(messages=rows, earlier_before=rows[0].pk if has_earlier else None)


def widget_messages(
    *, conversation: Conversation, after: int | None = None, limit: int = WIDGET_MESSAGES_LIMIT
) -> list[Message]:
    """Messages the widget has not shown yet (ids after `after`), oldest first."""
    qs = Message.objects.filter(conversation=conversation)
    if after is not None:
        qs = qs.filter(id__gt=after)
    return list(qs.order_by("id")[:limit])


@dataclass
class SidebarAttribute:
    key: str
    label: str
    value: str
    secure: bool


@dataclass
class ContactSidebar:
    contact: Contact
    attributes: list[SidebarAttribute] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    stripe_accounts: list[StripeAccount] = field(default_factory=list)
    other_conversations: list[Conversation] = field(default_factory=list)
    more_conversations: int = 0


def contact_sidebar(*, contact: Contact, conversation: Conversation) -> ContactSidebar:
    """Who the visitor is, for the conversation page: typed non-archived attributes, tags,
    Stripe accounts and their other conversations (a fixed number of queries)."""
    values = contact.attributes or {}
    attributes = [
        SidebarAttribute(
            key=d.key,
            label=d.label,
            value=display_value(d.type, values[d.key]),
            secure=d.secure,
        )
        for d in attribute_definitions(agent=contact.agent_id)
        if values.get(d.key) is not None
    ]
    tags = list(Tag.objects.filter(contact_tags__contact=contact).order_by(Lower("name"), "id"))
    stripe_accounts = list(
        StripeAccount.objects.filter(contact=contact).order_by("created_at", "id")
    )
    others = list(
        Conversation.objects.filter(contact=contact)
        .exclude(pk=conversation.pk)
        .order_by("-last_message_at", "id")[:SIDEBAR_OTHER_CONVERSATIONS]
    )
    shown = len(others) + 1
    return ContactSidebar(
        contact=contact,
        attributes=attributes,
        tags=tags,
        stripe_accounts=stripe_accounts,
        other_conversations=others,
        more_conversations=max(contact.conversation_count - shown, 0),
    )


# --- A contact's conversations ------------------------------------------------------------

# The two orders of a contact's conversation history (the API's `ordering` values). Ties on
# the time are broken by id in the same direction, so one (contact, -last_message_at, -id)
# index serves both: read forwards for newest first, backwards for oldest first.
NEWEST_FIRST = "-last_message_at"
OLDEST_FIRST = "last_message_at"
CONTACT_CONVERSATION_ORDERINGS = (NEWEST_FIRST, OLDEST_FIRST)


def contact_conversations_page(
    *,
    contact: Contact,
    after: tuple[Any, uuid.UUID] | None = None,
    size: int = 50,
    ordering: str = NEWEST_FIRST,
    backwards: bool = False,
) -> tuple[list[Conversation], bool]:
    """One page of the contact's conversations in `ordering` and whether more follow.

    `after` is the (last_message_at, id) of the row the page continues from (keyset);
    `backwards` reads the rows before that one instead, still returned in `ordering`.
    """
    if ordering not in CONTACT_CONVERSATION_ORDERINGS:
        raise ValueError(f"Unknown ordering {ordering!r}.")
    ascending = (ordering == OLDEST_FIRST) != backwards
    qs = Conversation.objects.filter(contact=contact)
    if after is not None:
        moment, pk = after
        # The extra bound on the time alone is an index range condition; the OR picks the
        # id tie-break within the boundary time.
        if ascending:
            qs = qs.filter(
                Q(last_message_at__gt=moment) | Q(last_message_at=moment, id__gt=pk),
                last_message_at__gte=moment,
            )
        else:
            qs = qs.filter(
                Q(last_message_at__lt=moment) | Q(last_message_at=moment, id__lt=pk),
                last_message_at__lte=moment,
            )
    order = ("last_message_at", "id") if ascending else ("-last_message_at", "-id")
    rows = list(qs.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    return rows, more


def contact_conversations_cursor(
    conversation: Conversation, *, ordering: str, direction: str = "next"
) -> str:
    """The cursor continuing `ordering` after (`next`) or before (`prev`) `conversation`."""
    return encode_cursor(
        {"t": conversation.last_message_at, "i": conversation.pk, "o": ordering, "d": direction}
    )


def contact_conversations_cursor_decode(
    cursor: str, *, ordering: str
) -> tuple[datetime, uuid.UUID, str]:
    """(last activity, id, direction) of a cursor made for `ordering`; InvalidCursor for
    anything else. Cursors from before orderings existed (no "o", no "d") continue the
    default order forwards."""
    payload = decode_cursor(cursor, keys=("t", "i"))
    moment, pk = cursor_moment(payload["t"]), cursor_uuid(payload["i"])
    direction = payload.get("d", "next")
    if direction not in ("next", "prev"):
        raise InvalidCursor
    if payload.get("o", NEWEST_FIRST) != ordering:
        raise InvalidCursor(
            "The cursor was made for another ordering; start again from the first page."
        )
    return moment, pk, direction


@dataclass
class ContactConversations:
    items: list[Conversation]
    ordering: str = NEWEST_FIRST
    next_cursor: str | None = None
    previous_cursor: str | None = None


def contact_conversation_history(
    *,
    contact: Contact,
    ordering: str = NEWEST_FIRST,
    cursor: str | None = None,
    size: int = CONTACT_CONVERSATIONS_PAGE_SIZE,
) -> ContactConversations:
    """A page of the contact page's conversation history, paged both ways (one query).
    ValueError (its message for people) for a cursor that is not one of this ordering's."""
    after, backwards = None, False
    if cursor:
        try:
            moment, pk, direction = contact_conversations_cursor_decode(cursor, ordering=ordering)
        except InvalidCursor:
            raise ValueError("The page link is not valid; showing the first page.") from None
        after, backwards = (moment, pk), direction == "prev"
    rows, more = contact_conversations_page(
        contact=contact, after=after, size=size, ordering=ordering, backwards=backwards
    )
    if not rows and cursor:
        # Nothing left on that side (conversations moved away by a merge): start over.
        return contact_conversation_history(contact=contact, ordering=ordering, size=size)
    page = ContactConversations(items=rows, ordering=ordering)
    if not rows:
        return page
    more_after = True if backwards else more
    more_before = more if backwards else bool(cursor)
    if more_after:
        page.next_cursor = contact_conversations_cursor(rows[-1], ordering=ordering)
    if more_before:
        page.previous_cursor = contact_conversations_cursor(
            rows[0], ordering=ordering, direction="prev"
        )
    return page
