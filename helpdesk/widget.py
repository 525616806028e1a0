"""Widget endpoints for conversations (public, CORS, no cookies).

The visitor is whoever the session token says: `Authorization: Bearer <session_token>`
from identify. A session may touch only its own contact's conversations; any other id
answers 404, exactly like an unknown one.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from core.errors import ValidationFailed
from core.times import iso
from helpdesk import selectors, services
from helpdesk.models import Conversation, Message
from identity.models import VisitorSession
from identity.sessions import InvalidSessionToken, session_token_verify
from identity.widget_http import WidgetError, bearer_token, read_json, widget_endpoint
from workspaces.models import Agent


def _session(request: HttpRequest, agent: Agent) -> VisitorSession:
    token = bearer_token(request)
    if not token:
        raise WidgetError(
            "invalid_session",
            "Send the session token from identify as Authorization: Bearer <session_token>.",
            status=401,
        )
    try:
        return session_token_verify(token=token, agent=agent)
    except InvalidSessionToken as exc:
        raise WidgetError("invalid_session", f"{str(exc).capitalize()}.", status=401) from None


def _own_conversation(session: VisitorSession, agent: Agent, conversation_id) -> Conversation:
    not_found = WidgetError("not_found", "No such conversation.", status=404)
    if session.contact_id is None:
        raise not_found
    try:
        conversation = selectors.conversation_get(agent=agent, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise not_found from None
    if conversation.contact_id != session.contact_id:
        raise not_found
    return conversation


def _invalid(exc: ValidationFailed) -> WidgetError:
    return WidgetError(exc.code, exc.message, fields=exc.fields)


def message_json(message: Message) -> dict:
    return {
        "id": message.pk,
        "role": message.role,
        "body": message.body,
        "created_at": iso(message.created_at),
    }


@widget_endpoint(methods=("POST",), limited=("POST",))
def conversations(request: HttpRequest, agent: Agent) -> JsonResponse:
    """Start a conversation for the session's contact (an anonymous one if it has none)."""
    session = _session(request, agent)
    data = read_json(request)
    message = data.get("message")
    if message is not None and not isinstance(message, str):
        raise WidgetError(
            "validation_error",
            "message: The message must be a string.",
            fields={"message": ["The message must be a string."]},
        )
    try:
        conversation = services.widget_conversation_start(
            agent=agent, session=session, message=(message or "").strip() or None
        )
    except ValidationFailed as exc:
        raise _invalid(exc) from None
    return JsonResponse(
        {"conversation": {"id": str(conversation.pk), "status": conversation.status}}, status=201
    )


@widget_endpoint(methods=("GET", "POST"))
def messages(request: HttpRequest, agent: Agent, conversation_id) -> JsonResponse:
    """GET: the conversation's messages after `?after=<message id>`. POST: the visitor writes."""
    session = _session(request, agent)
    conversation = _own_conversation(session, agent, conversation_id)
    if request.method == "GET":
        after = _after(request.GET.get("after"))
        rows = selectors.widget_messages(conversation=conversation, after=after)
        return JsonResponse({"messages": [message_json(m) for m in rows]})
    data = read_json(request)
    if "body" not in data:
        raise WidgetError(
            "validation_error",
            "body: Write the message in the body field.",
            fields={"body": ["Write the message in the body field."]},
        )
    try:
        message = services.widget_message_post(
            session=session, conversation=conversation, body=data["body"]
        )
    except ValidationFailed as exc:
        raise _invalid(exc) from None
    return JsonResponse({"message": message_json(message)}, status=201)


def _after(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise WidgetError(
            "validation_error",
            f"after: {raw[:40]!r} is not a message id.",
            fields={"after": ["Give the id of the last message you have, a whole number."]},
        )
    return int(raw)
