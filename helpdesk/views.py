"""The inbox, the conversation page and a contact's conversation history (dashboard, htmx).

Every view re-checks the user's access to the agent (`get_agent_access`: 404 for an agent
of another workspace) and looks the conversation or contact up inside that agent, so
another workspace's conversation or contact id is a 404 as well.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from contacts.models import Contact
from contacts.selectors import parse_contact_id, tag_names
from core.errors import ValidationFailed
from core.htmx import render_page_or_fragment, wants_fragment
from helpdesk import selectors, services
from helpdesk.models import Conversation, Message
from workspaces.access import get_agent_access
from workspaces.models import Agent
from workspaces.selectors import AgentAccess

OPEN, ESCALATED, CLOSED = Conversation.Status
# The default tab is what still needs someone (open and escalated).
STATUS_TABS = (
    (selectors.ACTIVE, "Needs attention"),
    *Conversation.Status.choices,
    (selectors.ALL, "All"),
)
# The buttons a conversation page offers in each status: (new status, label).
STATUS_ACTIONS = {
    OPEN: ((ESCALATED, "Escalate"), (CLOSED, "Close")),
    ESCALATED: ((OPEN, "De-escalate"), (CLOSED, "Close")),
    CLOSED: ((OPEN, "Reopen"),),
}
STATUS_DONE = {OPEN: "reopened", ESCALATED: "escalated", CLOSED: "closed"}
# A contact's conversation history: (ordering, label, its first page, where "next" and
# "previous" lead).
HISTORY_ORDERS = (
    (selectors.NEWEST_FIRST, "Newest first", "Newest", "Older", "Newer"),
    (selectors.OLDEST_FIRST, "Oldest first", "Oldest", "Newer", "Older"),
)


def _preview(conversation: Conversation) -> str:
    """The latest message in one line, unless it only repeats the subject."""
    text = " ".join((conversation.last_message_body or "").split())
    return "" if text == conversation.subject else text


def _quoted(names: list[str], joiner: str) -> str:
    """“a”, “b” or “c”, each cut to a tag name's length (64): a URL can hold anything."""
    quoted = [f"“{name[:64]}”" for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {joiner} {quoted[-1]}"


@require_GET
@login_required
@vary_on_headers("HX-Request", "HX-Target")
def inbox(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    access = get_agent_access(request, agent_public_id)
    status = request.GET.get("status", "") or selectors.ACTIVE
    if status not in {value for value, _ in STATUS_TABS}:
        status = selectors.ACTIVE
    q = request.GET.get("q", "").replace("\x00", "").strip()[: selectors.MAX_SEARCH]
    # Tags by name, like the contacts table (?tag=vip&tag=trial); a conversation matches
    # when its contact has any of them. Names that are not this agent's tags are left out.
    names = request.GET.getlist("tag")
    tags = selectors.inbox_tags_resolve(agent=access.agent, names=names) if names else None
    chosen = tags.chosen if tags else []
    tag_ids = [tag.pk for tag in chosen]
    notices = []
    if tags and tags.unknown:
        label = "No tag named" if len(tags.unknown) == 1 else "No tags named"
        notices.append(
            f"{label} {_quoted(tags.unknown, 'or')} here; "
            f"{'the list is narrowed by the other tags' if chosen else 'showing every tag'}."
        )
    try:
        page = selectors.inbox_page(
            agent=access.agent,
            status=status,
            q=q,
            tag_ids=tag_ids,
            cursor=request.GET.get("cursor") or None,
        )
    except ValueError as exc:
        notices.insert(0, str(exc))
        page = selectors.inbox_page(agent=access.agent, status=status, q=q, tag_ids=tag_ids)
    for conversation in page.items:
        conversation.preview = _preview(conversation)
    chosen_names = [tag.name for tag in chosen]
    context = {
        "agent": access.agent,
        "page": page,
        "status": status,
        "q": q,
        "notices": notices,
        "tabs": [{"value": v, "label": label, "active": v == status} for v, label in STATUS_TABS],
        "filtered": bool(status != selectors.ALL or q or chosen),
        "chosen_tags": chosen_names,
        "chosen_text": _quoted(chosen_names, "or") if chosen else "",
        # Links keep the tags that exist (under their own spelling), not what the URL said.
        "tag_params": chosen_names,
    }
    if not wants_fragment(request, "inbox-list"):
        # The picker: a fragment leaves it (and what is ticked in it) as it is.
        chosen_keys = {name.lower() for name in chosen_names}
        context["tag_options"] = [
            {"name": name, "checked": name.lower() in chosen_keys}
            for name in tag_names(agent=access.agent)
        ]
    return render_page_or_fragment(
        request, "helpdesk/inbox.html", "inbox-update", context, target="inbox-list"
    )


def _conversation_for(access: AgentAccess, conversation_id) -> Conversation:
    try:
        return selectors.conversation_get(agent=access.agent, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None


def _sender(message: Message, conversation: Conversation, agent_name: str) -> str:
    if message.role == Message.Role.STAFF:
        author = message.author
        if author is None:
            return "Support team"
        return author.get_full_name() or author.get_username()
    if message.role == Message.Role.BOT:
        return f"{agent_name} (bot)"
    if conversation.contact_erased:
        return "erased contact"
    if conversation.contact is not None:
        return conversation.contact.display_name
    return "Visitor"


def _page_context(
    request: HttpRequest, access: AgentAccess, conversation: Conversation, **extra
) -> dict:
    before = request.GET.get("before", "")
    before_id = int(before) if before.isascii() and before.isdigit() and len(before) < 19 else None
    transcript = selectors.conversation_transcript(conversation=conversation, before=before_id)
    for message in transcript.messages:
        message.sender = _sender(message, conversation, access.agent.name)
    contact = conversation.contact
    sidebar = (
        selectors.contact_sidebar(contact=contact, conversation=conversation)
        if contact is not None
        else None
    )
    return {
        "agent": access.agent,
        "conversation": conversation,
        "transcript": transcript,
        "live": before_id is None,
        "sidebar": sidebar,
        "status_actions": STATUS_ACTIONS[conversation.status],
        "reply_error": "",
        "reply_body": "",
        **extra,
    }


@require_GET
@login_required
@vary_on_headers("HX-Request", "HX-Target")
def conversation_detail(
    request: HttpRequest, agent_public_id: str, conversation_id
) -> HttpResponse:
    access = get_agent_access(request, agent_public_id)
    conversation = _conversation_for(access, conversation_id)
    context = _page_context(request, access, conversation)
    return render_page_or_fragment(
        request, "helpdesk/conversation.html", "transcript", context, target="transcript"
    )


def _after_write(
    request: HttpRequest, access: AgentAccess, conversation: Conversation, flash: str
) -> HttpResponse:
    if getattr(request, "htmx", None):
        context = _page_context(request, access, conversation)
        return render(request, "helpdesk/conversation.html#conversation-main", context)
    messages.success(request, flash)
    url = reverse(
        "helpdesk:conversation",
        kwargs={"agent_public_id": access.agent.public_id, "conversation_id": conversation.pk},
    )
    return redirect(url)


@require_POST
@login_required
def conversation_reply(request: HttpRequest, agent_public_id: str, conversation_id) -> HttpResponse:
    access = get_agent_access(request, agent_public_id)
    conversation = _conversation_for(access, conversation_id)
    body = request.POST.get("body", "")
    try:
        services.staff_reply(conversation=conversation, user=request.user, body=body)
    except ValidationFailed as exc:
        context = _page_context(
            request, access, conversation, reply_error=exc.fields["body"][0], reply_body=body
        )
        if getattr(request, "htmx", None):
            # htmx swaps only 2xx answers; the fragment itself carries the error.
            return render(request, "helpdesk/conversation.html#conversation-main", context)
        return render(request, "helpdesk/conversation.html", context, status=400)
    return _after_write(request, access, conversation, "Reply sent.")


@require_POST
@login_required
def conversation_status(
    request: HttpRequest, agent_public_id: str, conversation_id
) -> HttpResponse:
    access = get_agent_access(request, agent_public_id)
    conversation = _conversation_for(access, conversation_id)
    status = request.POST.get("status", "")
    try:
        services.conversation_set_status(conversation=conversation, status=status)
    except ValidationFailed as exc:
        context = _page_context(request, access, conversation)
        messages.error(request, exc.fields["status"][0])
        return render(request, "helpdesk/conversation.html", context, status=400)
    return _after_write(request, access, conversation, f"Conversation {STATUS_DONE[status]}.")


# --- A contact's conversation history (a panel of the contact page) -------------------------


def contact_history_panel(
    agent: Agent,
    contact: Contact,
    *,
    ordering: str = selectors.NEWEST_FIRST,
    cursor: str | None = None,
) -> dict:
    """What the contact page's Conversations panel shows: a page of the history in
    `ordering`, the links to the other order and to the next and previous pages (one query).
    """
    notice = ""
    try:
        page = selectors.contact_conversation_history(
            contact=contact, ordering=ordering, cursor=cursor
        )
    except ValueError as exc:
        notice = str(exc)
        page = selectors.contact_conversation_history(contact=contact, ordering=ordering)
    base = reverse(
        "helpdesk:contact_conversations",
        kwargs={"agent_public_id": agent.public_id, "contact_id": contact.pk},
    )

    def url(order: str, at: str | None = None) -> str:
        params = {"ordering": order} if order != selectors.NEWEST_FIRST else {}
        if at:
            params["cursor"] = at
        return f"{base}?{urlencode(params)}" if params else base

    first_label, next_label, previous_label = next(
        (first, n, p) for value, _, first, n, p in HISTORY_ORDERS if value == ordering
    )
    return {
        "conversations": [
            {
                "conversation": conversation,
                "url": reverse(
                    "helpdesk:conversation",
                    kwargs={"agent_public_id": agent.public_id, "conversation_id": conversation.pk},
                ),
            }
            for conversation in page.items
        ],
        # The contact's counter, kept by every write that adds or moves a conversation: the
        # whole history, not this page.
        "count": contact.conversation_count,
        "orders": [
            {"label": text, "url": url(value), "current": value == ordering}
            for value, text, *_ in HISTORY_ORDERS
        ],
        "next_url": url(ordering, page.next_cursor) if page.next_cursor else "",
        "next_label": next_label,
        "previous_url": url(ordering, page.previous_cursor) if page.previous_cursor else "",
        "previous_label": previous_label,
        "first_url": url(ordering) if page.previous_cursor else "",
        "first_label": first_label,
        "notice": notice,
        "push_url": False,
    }


def _path(url: str | None) -> str:
    return urlsplit(url or "").path


@require_GET
@login_required
@vary_on_headers("HX-Request", "HX-Target", "HX-Current-URL")
def contact_conversations(request: HttpRequest, agent_public_id: str, contact_id) -> HttpResponse:
    """The contact's conversation history: the contact page's panel for htmx, else a page of
    its own (every link of the panel works without JavaScript)."""
    access = get_agent_access(request, agent_public_id)
    try:
        contact = Contact.objects.get(agent=access.agent, pk=parse_contact_id(contact_id))
    except Contact.DoesNotExist:
        raise Http404("No such contact.") from None
    ordering = request.GET.get("ordering", "")
    if ordering not in selectors.CONTACT_CONVERSATION_ORDERINGS:
        ordering = selectors.NEWEST_FIRST
    panel = contact_history_panel(
        access.agent, contact, ordering=ordering, cursor=request.GET.get("cursor") or None
    )
    fragment = wants_fragment(request, "contact-conversations")
    # On this page of its own the address follows the panel; on the contact page it stays
    # the contact's (the panel's links carry their own state).
    panel["push_url"] = not fragment or _path(request.htmx.current_url) == request.path
    context = {
        "agent": access.agent,
        "contact": contact,
        "panel": panel,
        "contact_url": reverse(
            "contacts:detail",
            kwargs={"agent_public_id": access.agent.public_id, "contact_id": contact.pk},
        ),
    }
    if fragment:
        return render(request, "helpdesk/_contact_conversations.html", context)
    return render(request, "helpdesk/contact_conversations.html", context)
