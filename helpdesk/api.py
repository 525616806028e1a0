"""Conversation endpoints of the API, for the agent's bot: who is this (context), fill an
action template (render), answer (messages) and hand over or close (status).

All are scoped to the API key's agent: another agent's conversation answers 404 like an
unknown id, in the API's one error shape.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status as http
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attributes.selectors import attribute_definition_map
from contacts.api import CONTACT_ID, contact_or_404
from contacts.models import Contact
from contacts.serialization import contact_to_dict
from core.api.fields import ErrorSerializer
from core.api.paging import CURSOR, PAGE_SIZE, page_url, query_page_size
from core.api.request import refuse_nul
from core.api.schema import errors
from core.keyset import InvalidCursor
from core.times import iso
from helpdesk import selectors, services
from helpdesk.models import Conversation
from helpdesk.personalization import (
    conversation_session_context,
    personalization_contact,
    render_action_template,
)
from helpdesk.selectors import contact_conversations_page
from helpdesk.serializers import (
    BotMessageCreateSerializer,
    ConversationContextSerializer,
    ConversationMessageSerializer,
    ConversationPageSerializer,
    ConversationRefSerializer,
    ConversationStatusSerializer,
    TemplateRenderRequestSerializer,
    TemplateRenderSerializer,
)
from workspaces.api import api_agent

CONVERSATION_ID = OpenApiParameter(
    "conversation_id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="The conversation's id.",
)
ERRORS = {
    401: ErrorSerializer,
    404: ErrorSerializer,
    405: ErrorSerializer,
    429: ErrorSerializer,
}
WRITE_ERRORS = {
    **ERRORS,
    400: ErrorSerializer,
    413: ErrorSerializer,
    415: ErrorSerializer,
}


def _conversation(request: Request, conversation_id: str) -> Conversation:
    try:
        return selectors.conversation_get(agent=api_agent(request), conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise NotFound("No such conversation.") from None


@extend_schema(
    tags=["conversations"],
    summary="Who the bot is talking to",
    description=(
        "For a conversation whose contact is **verified**: the contact's fields, tags, Stripe "
        "accounts and non-archived attributes. For any other conversation (anonymous or "
        "self-reported contact, or none): an anonymous context with `contact: null`. An "
        "unverified contact's details are never returned: anyone can type an email in a chat. "
        "`session_context` carries the `user_metadata` the visitor's page sent beside its "
        "signed token (the page, the cart…), marked `verified: false`: the browser's word, "
        "for tailoring answers, never for deciding who the person is."
    ),
    parameters=[CONVERSATION_ID],
    responses={200: ConversationContextSerializer, **ERRORS},
)
@api_view(["GET"])
def conversation_context(request: Request, conversation_id: str) -> Response:
    conversation = _conversation(request, conversation_id)
    contact = personalization_contact(conversation)
    contact_data = None
    if contact is not None:
        definitions = attribute_definition_map(agent=conversation.agent_id)
        visible = {key for key, d in definitions.items() if not d.archived}
        contact = (
            Contact.objects.filter(pk=contact.pk)
            .prefetch_related("tags", "stripe_accounts")
            .first()
        )
        if contact is not None:
            contact_data = contact_to_dict(contact, visible_keys=visible)
    body = {
        "conversation": {"id": conversation.pk, "status": conversation.status},
        "verified": contact_data is not None,
        "contact": contact_data,
        "session_context": conversation_session_context(conversation, contact),
    }
    return Response(ConversationContextSerializer(body).data)


@extend_schema(
    tags=["conversations"],
    summary="Fill an action template with the verified contact",
    description=(
        "Replaces {{contact.name}}, {{contact.email}}, {{contact.phone}}, "
        "{{contact.external_id}} and {{contact.attr.<key>}} with the conversation's verified "
        "contact's values, inserted as plain text in one pass (a value is never read as a "
        "placeholder or as HTML). Unknown keys render empty and are listed in `unknown_keys`; "
        "for an unverified contact every placeholder renders empty."
    ),
    parameters=[CONVERSATION_ID],
    request=TemplateRenderRequestSerializer,
    responses={200: TemplateRenderSerializer, **WRITE_ERRORS},
)
@api_view(["POST"])
def conversation_render(request: Request, conversation_id: str) -> Response:
    conversation = _conversation(request, conversation_id)
    payload = TemplateRenderRequestSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    contact = personalization_contact(conversation)
    result = render_action_template(
        payload.validated_data["template"],
        contact,
        definitions=attribute_definition_map(agent=conversation.agent_id),
        escape=payload.validated_data["escape"],
    )
    body = {
        "rendered": result.text,
        "verified": contact is not None,
        "unknown_keys": result.unknown_keys,
        "missing_keys": result.missing_keys,
    }
    return Response(TemplateRenderSerializer(body).data)


@extend_schema(
    tags=["conversations"],
    summary="The bot answers in the conversation",
    parameters=[CONVERSATION_ID],
    request=BotMessageCreateSerializer,
    responses={201: ConversationMessageSerializer, **WRITE_ERRORS},
)
@api_view(["POST"])
def conversation_messages(request: Request, conversation_id: str) -> Response:
    conversation = _conversation(request, conversation_id)
    payload = BotMessageCreateSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    message = services.bot_reply(conversation=conversation, body=payload.validated_data["body"])
    return Response(ConversationMessageSerializer(message).data, status=http.HTTP_201_CREATED)


@extend_schema(
    tags=["conversations"],
    summary="Escalate, close or reopen the conversation",
    description="`escalated` hands the conversation to the support team's inbox.",
    parameters=[CONVERSATION_ID],
    request=ConversationStatusSerializer,
    responses={200: ConversationRefSerializer, **WRITE_ERRORS},
)
@api_view(["POST"])
def conversation_status(request: Request, conversation_id: str) -> Response:
    conversation = _conversation(request, conversation_id)
    payload = ConversationStatusSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    services.conversation_set_status(
        conversation=conversation, status=payload.validated_data["status"]
    )
    return Response(ConversationRefSerializer(conversation).data)


# --- A contact's conversations (GET /api/v1/contacts/{id}/conversations/) --------------------

CONVERSATION_ORDERING = OpenApiParameter(
    "ordering",
    # Empty means the default, as for the contacts list's ordering.
    {"type": "string", "enum": [*selectors.CONTACT_CONVERSATION_ORDERINGS, ""]},
    default=selectors.NEWEST_FIRST,
    description=(
        "`-last_message_at` (default, also when empty): most recent activity first. "
        "`last_message_at`: oldest activity first. Ties are broken by id in the same "
        "direction, so pages are stable. A `next` URL keeps the ordering; a cursor used with "
        "another ordering answers 400."
    ),
)


def _conversation_ordering(params) -> str:
    ordering = params.get("ordering") or selectors.NEWEST_FIRST
    if ordering not in selectors.CONTACT_CONVERSATION_ORDERINGS:
        choices = " or ".join(selectors.CONTACT_CONVERSATION_ORDERINGS)
        raise ValidationError({"ordering": [f"Use {choices}."]})
    return ordering


def _decode_conversation_cursor(cursor: str, ordering: str) -> tuple[datetime, uuid.UUID]:
    """The (last_message_at, id) a page continues after; the cursor carries its ordering."""
    try:
        moment, pk, direction = selectors.contact_conversations_cursor_decode(
            cursor, ordering=ordering
        )
    except InvalidCursor as exc:
        raise ValidationError({"cursor": [str(exc)]}) from None
    if direction != "next":  # the dashboard's way back; the API only follows `next`
        raise ValidationError({"cursor": [str(InvalidCursor())]})
    return moment, pk


class ContactConversations(APIView):
    @extend_schema(
        operation_id="contacts_conversations",
        tags=["contacts"],
        summary="A contact's conversations",
        description=(
            "Most recent activity first (or oldest first with `ordering=last_message_at`); "
            "follow `next` for the following page."
        ),
        parameters=[CONTACT_ID, CONVERSATION_ORDERING, CURSOR, PAGE_SIZE],
        responses={200: ConversationPageSerializer, **errors(400, 404)},
    )
    def get(self, request: Request, contact_id: uuid.UUID) -> Response:
        agent = api_agent(request)
        params = request.query_params
        refuse_nul(params)
        size = query_page_size(params)
        ordering = _conversation_ordering(params)
        cursor = (params.get("cursor") or "").strip()
        after = _decode_conversation_cursor(cursor, ordering) if cursor else None
        contact = contact_or_404(agent, contact_id)
        rows, more = contact_conversations_page(
            contact=contact, after=after, size=size, ordering=ordering
        )
        next_cursor = (
            selectors.contact_conversations_cursor(rows[-1], ordering=ordering)
            if more and rows
            else None
        )
        return Response(
            {
                "results": [
                    {
                        "id": str(c.pk),
                        "status": c.status,
                        "subject": c.subject,
                        "created_at": iso(c.created_at),
                        "updated_at": iso(c.updated_at),
                        "last_message_at": iso(c.last_message_at),
                    }
                    for c in rows
                ],
                "next": page_url(request, next_cursor),
            }
        )
