"""The inbox and the conversation page (dashboard, htmx).

Every view re-checks the user's access to the agent (`get_agent_access`: 404 for an agent
of another workspace) and looks the conversation up inside that agent, so another
workspace's conversation id is a 404 as well.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from contacts.selectors import tag_names
from core.errors import ValidationFailed
from core.htmx import render_page_or_fragment, wants_fragment
from helpdesk import selectors, services
from helpdesk.models import Conversation, Message
from workspaces.access import get_agent_access
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
