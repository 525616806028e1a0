"""REST API v1: the webhook endpoints of the API key's agent and their deliveries."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import StrictBooleanField, StrictCharField, StrictSerializer
from core.api.paging import CURSOR, PAGE_SIZE, page_url, query_page_size
from core.api.request import refuse_nul, validated
from core.api.schema import BODY_ERRORS, errors
from core.keyset import InvalidCursor, decode_cursor, encode_cursor
from core.times import iso
from webhooks import selectors, services
from webhooks.models import (
    ALL_EVENTS,
    DESCRIPTION_MAX,
    EVENT_TYPES,
    URL_MAX,
    WebhookDelivery,
    WebhookEndpoint,
)
from webhooks.rendering import messages_render
from webhooks.secrets import endpoint_signing_secrets
from workspaces.api import api_agent
from workspaces.models import Agent

TAGS = ["webhooks"]
NOT_FOUND = "No webhook endpoint with this id for the API key's agent."
ENDPOINT_ID = OpenApiParameter(
    "endpoint_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The endpoint's id."
)
DELIVERY_ID = OpenApiParameter(
    "delivery_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The delivery's id."
)
EVENTS_HELP = (
    f'Event types to send ({", ".join(EVENT_TYPES)}), or `["{ALL_EVENTS}"]` for all of them.'
)


# --- Serializers (bodies in, documentation of bodies out) -----------------------------------


class EventsField(serializers.ListField):
    child = serializers.ChoiceField(choices=[*EVENT_TYPES, ALL_EVENTS])

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=1, max_length=len(EVENT_TYPES) + 1, **kwargs)


class EndpointCreateSerializer(StrictSerializer):
    url = StrictCharField(max_length=URL_MAX, help_text="Where to POST the events.")
    events = EventsField(help_text=EVENTS_HELP)
    description = StrictCharField(
        max_length=DESCRIPTION_MAX, required=False, allow_blank=True, default=""
    )


class EndpointUpdateSerializer(StrictSerializer):
    url = StrictCharField(max_length=URL_MAX, required=False)
    events = EventsField(required=False, help_text=EVENTS_HELP)
    description = StrictCharField(max_length=DESCRIPTION_MAX, required=False, allow_blank=True)
    enabled = StrictBooleanField(
        required=False,
        help_text="false pauses deliveries (they wait); true resumes them and clears failures.",
    )


class EndpointSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(
        help_text="Why the endpoint was switched off by the failure rule (else empty)."
    )
    disabled_at = serializers.DateTimeField(allow_null=True)
    failing_since = serializers.DateTimeField(
        allow_null=True, help_text="First failed attempt since the last success."
    )
    secret_rotation_ends_at = serializers.DateTimeField(
        allow_null=True, help_text="Until then the previous secret signs beside the current one."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(
        help_text="The signing secret (whsec_…). Shown only in this answer: store it now."
    )


class EndpointListSerializer(serializers.Serializer):
    results = EndpointSerializer(many=True)


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new signing secret, shown only here.")
    previous_secret_expires_at = serializers.DateTimeField(allow_null=True)


class DeliverySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    message_id = serializers.CharField(help_text="The webhook-id header (same on every retry).")
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    response_status = serializers.IntegerField(allow_null=True)
    response_body = serializers.CharField(help_text="The first 2 KB of the answer.")
    latency_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    payload = serializers.JSONField(help_text="The body sent.")


class DeliveryPageSerializer(serializers.Serializer):
    results = DeliverySerializer(many=True)
    next = serializers.URLField(allow_null=True)


# --- JSON ------------------------------------------------------------------------------------


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    rotating = len(endpoint_signing_secrets(endpoint)) > 1
    return {
        "id": str(endpoint.pk),
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": iso(endpoint.disabled_at),
        "failing_since": iso(endpoint.failing_since),
        "secret_rotation_ends_at": iso(endpoint.previous_secret_expires_at) if rotating else None,
        "created_at": iso(endpoint.created_at),
        "updated_at": iso(endpoint.updated_at),
    }


def delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    """Expects the message rendered (`messages_render`)."""
    message = delivery.message
    pending = delivery.status == WebhookDelivery.Status.PENDING
    return {
        "id": str(delivery.pk),
        "message_id": message.webhook_id,
        "event_type": message.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at) if pending else None,
        "last_attempt_at": iso(delivery.last_attempt_at),
        "response_status": delivery.response_status,
        "response_body": delivery.response_body,
        "latency_ms": delivery.latency_ms,
        "error": delivery.error,
        "created_at": iso(delivery.created_at),
        "payload": orjson.loads(message.body),
    }


def endpoint_or_404(agent: Agent, endpoint_id: Any) -> WebhookEndpoint:
    try:
        return selectors.endpoint_get(agent=agent, endpoint_id=endpoint_id)
    except WebhookEndpoint.DoesNotExist:
        raise exceptions.NotFound(
            f"No webhook endpoint with id {endpoint_id} for this agent."
        ) from None


# --- Views -----------------------------------------------------------------------------------


class EndpointCollection(APIView):
    @extend_schema(
        operation_id="webhooks_list",
        tags=TAGS,
        summary="The agent's webhook endpoints",
        responses={200: EndpointListSerializer},
    )
    def get(self, request: Request) -> Response:
        endpoints = selectors.endpoints_of(agent=api_agent(request))
        return Response({"results": [endpoint_json(e) for e in endpoints]})

    @extend_schema(
        operation_id="webhooks_create",
        tags=TAGS,
        summary="Register a webhook endpoint",
        description=(
            "Events are POSTed as JSON signed the Standard Webhooks way (`webhook-id`, "
            "`webhook-timestamp`, `webhook-signature` headers) with the `secret` returned "
            "here, **only in this answer**. In production the URL must be https:// and reach "
            "a public address."
        ),
        request=EndpointCreateSerializer,
        responses={
            201: EndpointWithSecretSerializer,
            **errors(*BODY_ERRORS, 409, e409="The agent has as many endpoints as it may."),
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(EndpointCreateSerializer, request.data)
        endpoint, secret = services.endpoint_create(agent=api_agent(request), **data)
        return Response({**endpoint_json(endpoint), "secret": secret}, status=201)


class EndpointDetail(APIView):
    @extend_schema(
        operation_id="webhooks_retrieve",
        tags=TAGS,
        summary="One webhook endpoint",
        parameters=[ENDPOINT_ID],
        responses={200: EndpointSerializer, **errors(404, e404=NOT_FOUND)},
    )
    def get(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        return Response(endpoint_json(endpoint_or_404(api_agent(request), endpoint_id)))

    @extend_schema(
        operation_id="webhooks_update",
        tags=TAGS,
        summary="Change an endpoint's URL, events, description, or pause/resume it",
        parameters=[ENDPOINT_ID],
        request=EndpointUpdateSerializer,
        responses={200: EndpointSerializer, **errors(*BODY_ERRORS, 404, e404=NOT_FOUND)},
    )
    def patch(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        endpoint = endpoint_or_404(api_agent(request), endpoint_id)
        data = validated(EndpointUpdateSerializer, request.data)
        return Response(endpoint_json(services.endpoint_update(endpoint, **data)))

    @extend_schema(
        operation_id="webhooks_delete",
        tags=TAGS,
        summary="Remove an endpoint and its delivery log",
        parameters=[ENDPOINT_ID],
        responses={204: None, **errors(404, e404=NOT_FOUND)},
    )
    def delete(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        services.endpoint_delete(endpoint_or_404(api_agent(request), endpoint_id))
        return Response(status=204)


class EndpointRotateSecret(APIView):
    @extend_schema(
        operation_id="webhooks_rotate_secret",
        tags=TAGS,
        summary="Replace the signing secret",
        description=(
            "Returns the new secret (only here). Until `previous_secret_expires_at` every "
            "message is signed with both, so receivers can switch without missing one."
        ),
        parameters=[ENDPOINT_ID],
        request=None,
        responses={200: SecretSerializer, **errors(404, e404=NOT_FOUND)},
    )
    def post(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        endpoint = endpoint_or_404(api_agent(request), endpoint_id)
        secret = services.endpoint_rotate_secret(endpoint)
        return Response(
            {
                "secret": secret,
                "previous_secret_expires_at": iso(endpoint.previous_secret_expires_at),
            }
        )


class EndpointTest(APIView):
    @extend_schema(
        operation_id="webhooks_test",
        tags=TAGS,
        summary="Send a test event now",
        description=(
            "A `webhook.test` event to this endpoint only, attempted during the call; the "
            "answer is the delivery with the attempt's outcome (retried later like any other "
            "when the attempt failed for a reason worth retrying)."
        ),
        parameters=[ENDPOINT_ID],
        request=None,
        responses={200: DeliverySerializer, **errors(404, e404=NOT_FOUND)},
    )
    def post(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        endpoint = endpoint_or_404(api_agent(request), endpoint_id)
        return Response(delivery_json(services.endpoint_send_test(endpoint)))


def _delivery_cursor(params) -> uuid.UUID | None:
    raw = (params.get("cursor") or "").strip()
    if not raw:
        return None
    try:
        return uuid.UUID(decode_cursor(raw, keys=("id",))["id"])
    except (InvalidCursor, ValueError, TypeError, AttributeError):
        raise serializers.ValidationError(
            {"cursor": ["The cursor is not valid; start again from the first page."]}
        ) from None


class DeliveryCollection(APIView):
    @extend_schema(
        operation_id="webhooks_deliveries",
        tags=TAGS,
        summary="An endpoint's deliveries, newest first",
        parameters=[ENDPOINT_ID, CURSOR, PAGE_SIZE],
        responses={200: DeliveryPageSerializer, **errors(400, 404, e404=NOT_FOUND)},
    )
    def get(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        params = request.query_params
        refuse_nul(params)
        size = query_page_size(params)
        before = _delivery_cursor(params)
        endpoint = endpoint_or_404(api_agent(request), endpoint_id)
        rows = selectors.deliveries_of(endpoint=endpoint)
        if before is not None:
            rows = rows.filter(pk__lt=before)
        page = list(rows.order_by("-id")[: size + 1])
        more = len(page) > size
        page = page[:size]
        messages_render([d.message for d in page])
        cursor = encode_cursor({"id": str(page[-1].pk)}) if more else None
        return Response(
            {"results": [delivery_json(d) for d in page], "next": page_url(request, cursor)}
        )


class DeliveryRedeliver(APIView):
    @extend_schema(
        operation_id="webhooks_redeliver",
        tags=TAGS,
        summary="Send a delivery's message again",
        description=(
            "Queues a new delivery of the same message (same `webhook-id`, so a receiver "
            "that already handled it can tell) to the same endpoint. 202 with the new delivery."
        ),
        parameters=[ENDPOINT_ID, DELIVERY_ID],
        request=None,
        responses={202: DeliverySerializer, **errors(404, e404="No such endpoint or delivery.")},
    )
    def post(self, request: Request, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> Response:
        endpoint = endpoint_or_404(api_agent(request), endpoint_id)
        try:
            delivery = selectors.delivery_get(endpoint=endpoint, delivery_id=delivery_id)
        except WebhookDelivery.DoesNotExist:
            raise exceptions.NotFound(
                f"No delivery with id {delivery_id} for this endpoint."
            ) from None
        again = services.delivery_redeliver(delivery)
        again.message = delivery.message
        messages_render([again.message])
        return Response(delivery_json(again), status=202)
