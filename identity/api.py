"""REST API v1 for identity: a customer's server mints the help-center hand-off token.

The widget gets the same token from GET /widget/v1/<agent>/identity-token for the visitor it
has verified; here the API key holder vouches for the contact instead, so a server (an
e-mail, an app, a link built server-side) can send a verified customer to the help center
already identified. The token is the widget's: short-lived, single use, for one verified,
live contact of the key's agent, and read only by identify's hand-off mode.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.api import CONTACT_ID, contact_or_404
from contacts.models import AuditEvent, Contact, Identity
from contacts.services.audit import audit
from core.actors import Actor
from core.api.schema import errors
from core.errors import ConflictError, DomainError
from identity.verification import HANDOFF_PARAM, handoff_token_issue
from workspaces.api import api_actor, api_agent
from workspaces.models import Agent


class IdentityTokenSerializer(serializers.Serializer):
    identity_token = serializers.CharField(
        help_text="Single use; put it in the help-center link's query string."
    )
    expires_in = serializers.IntegerField(help_text="Seconds the token stays valid.")
    param = serializers.CharField(
        help_text=f"The query parameter the widget reads it from ({HANDOFF_PARAM})."
    )


def contact_identity_token_issue(*, agent: Agent, contact: Contact, actor: Actor) -> str:
    """A hand-off token for a verified, live contact of `agent`, recorded in its history."""
    if contact.agent_id != agent.pk or contact.deleted_at is not None:
        # A deleted contact has no visitor to hand over: as absent as an unknown id.
        raise DomainError(
            f"No live contact with id {contact.pk} for this agent.", code="not_found", status=404
        )
    if contact.identity != Identity.VERIFIED:
        # Only a contact someone vouched for may be handed to a browser: the token makes the
        # session that presents it this contact (the trust rule, SPEC 6).
        raise ConflictError(
            f"This contact is {contact.identity.replace('_', '-')}; an identity token can "
            "only carry a verified contact.",
            code="not_verified",
        )
    token = handoff_token_issue(agent_public_id=agent.public_id, contact_id=str(contact.pk))
    max_age = settings.IDENTITY_HANDOFF_MAX_AGE_SECONDS
    # The history says who handed this identity out and for how long; never the token.
    audit(
        contact=contact,
        actor=actor,
        action=AuditEvent.Action.UPDATED,
        changes={"identity_token": [None, f"issued, single use, valid {max_age} s"]},
    )
    return token


DESCRIPTION = f"""\
A short-lived, single-use token that carries this **verified** contact's identity to your
help center, the way the widget's help-center links do for a visitor it has verified. Build
the link yourself: `https://help.example.com/article?{HANDOFF_PARAM}=<identity_token>`. The
Rapport widget on that page reads the parameter, removes it from the address bar and
identifies the visitor with it: that browser's session becomes this contact.

The token works once and for `expires_in` seconds (IDENTITY_HANDOFF_MAX_AGE_SECONDS); mint one
per link, just before you send the visitor there, and only for the person it names. The
contact's history records each token issued. A contact that is not verified answers 409
`not_verified`; a deleted, unknown or other agent's contact answers 404.
"""


class ContactIdentityToken(APIView):
    @extend_schema(
        operation_id="contacts_identity_token",
        tags=["contacts"],
        summary="Mint a help-center hand-off token for a verified contact",
        description=DESCRIPTION,
        parameters=[CONTACT_ID],
        request=None,
        responses={
            200: OpenApiResponse(IdentityTokenSerializer, description="The token."),
            **errors(
                404,
                409,
                e404="No live contact with this id for the API key's agent (deleted ones too).",
                e409="The contact is not verified (code `not_verified`).",
            ),
        },
        examples=[
            OpenApiExample(
                "Token",
                value={
                    "identity_token": (
                        "eyJhIjoiYWdfN0hxMm1YOWtSNCIsImMiOiIwZjNjMmE2ZS04ZDFiLTRjNTktOWUyNy01Y"
                        "jZhMWQ0ZjhjMzAiLCJqIjoiVlppTjJTaHFaQUVkZVpvWnVKY05pQSJ9:1xa8sN:Qm9va"
                        "2V4YW1wbGUtc2lnbmF0dXJlLW5vdC12YWxpZA"
                    ),
                    "expires_in": 120,
                    "param": HANDOFF_PARAM,
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "Not verified",
                value={
                    "error": {
                        "code": "not_verified",
                        "message": "This contact is self-reported; an identity token can only "
                        "carry a verified contact.",
                        "fields": {},
                    }
                },
                response_only=True,
                status_codes=["409"],
            ),
        ],
    )
    def post(self, request: Request, contact_id: uuid.UUID) -> Response:
        agent = api_agent(request)
        contact = contact_or_404(agent, contact_id)
        token = contact_identity_token_issue(agent=agent, contact=contact, actor=api_actor(request))
        body = {
            "identity_token": token,
            "expires_in": settings.IDENTITY_HANDOFF_MAX_AGE_SECONDS,
            "param": HANDOFF_PARAM,
        }
        # A bearer credential: no cache (a proxy, the browser) may keep it.
        return Response(body, headers={"Cache-Control": "no-store"})
