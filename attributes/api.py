"""REST API v1 for the custom attribute schema of the API key's agent."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attributes import services
from attributes.models import KEY_PATTERN, AttributeDefinition
from attributes.selectors import attribute_definition_map, attribute_definitions
from attributes.serializers import (
    AttributeCreateSerializer,
    AttributeDeletedSerializer,
    AttributeListSerializer,
    AttributeSerializer,
    AttributeUpdateSerializer,
)
from core.api.request import query_flag, validated
from core.api.schema import BODY_ERRORS, errors
from core.errors import ConflictError
from core.times import iso
from workspaces.api import api_agent
from workspaces.models import Agent

_KEY_RE = re.compile(KEY_PATTERN)
NOT_FOUND = "No attribute with this key for the API key's agent."
KEY = OpenApiParameter("key", str, OpenApiParameter.PATH, description="The attribute's key.")


def definition_json(definition: AttributeDefinition) -> dict[str, Any]:
    return {
        "key": definition.key,
        "label": definition.label,
        "type": definition.type,
        "description": definition.description,
        "options": list(definition.options or []),
        "secure": definition.secure,
        "archived": definition.archived,
        "position": definition.position,
        "created_at": iso(definition.created_at),
        "updated_at": iso(definition.updated_at),
    }


def definition_or_404(agent: Agent, key: str) -> AttributeDefinition:
    definition = attribute_definition_map(agent=agent).get(key) if _KEY_RE.match(key) else None
    if definition is None:
        raise exceptions.NotFound(f"No attribute with key {key!r} for this agent.")
    return definition


class AttributeCollection(APIView):
    @extend_schema(
        operation_id="attributes_list",
        tags=["attributes"],
        summary="The attribute schema",
        description="Every attribute in display order, archived ones included (see `archived`).",
        responses={200: AttributeListSerializer},
    )
    def get(self, request: Request) -> Response:
        definitions = attribute_definitions(agent=api_agent(request), include_archived=True)
        return Response({"results": [definition_json(d) for d in definitions]})

    @extend_schema(
        operation_id="attributes_create",
        tags=["attributes"],
        summary="Define a custom attribute",
        request=AttributeCreateSerializer,
        responses={
            201: AttributeSerializer,
            **errors(
                *BODY_ERRORS,
                409,
                e409="The key is taken, or the agent has reached its attribute limit.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(AttributeCreateSerializer, request.data)
        definition = services.attribute_create(agent=api_agent(request), **data)
        return Response(definition_json(definition), status=201)


class AttributeDetail(APIView):
    @extend_schema(
        operation_id="attributes_retrieve",
        tags=["attributes"],
        summary="One attribute",
        parameters=[KEY],
        responses={200: AttributeSerializer, **errors(404, e404=NOT_FOUND)},
    )
    def get(self, request: Request, key: str) -> Response:
        return Response(definition_json(definition_or_404(api_agent(request), key)))

    @extend_schema(
        operation_id="attributes_update",
        tags=["attributes"],
        summary="Change an attribute's label, description, options or secure flag",
        description="The key and type never change. An option still held by contacts stays.",
        parameters=[KEY],
        request=AttributeUpdateSerializer,
        responses={
            200: AttributeSerializer,
            **errors(
                *BODY_ERRORS,
                404,
                409,
                e404=NOT_FOUND,
                e409="An option being removed is still held by contacts (`fields.options`).",
            ),
        },
    )
    def patch(self, request: Request, key: str) -> Response:
        definition = definition_or_404(api_agent(request), key)
        data = validated(AttributeUpdateSerializer, request.data)
        definition = services.attribute_update(definition=definition, **data)
        return Response(definition_json(definition))

    @extend_schema(
        operation_id="attributes_delete",
        tags=["attributes"],
        summary="Delete an attribute and its values",
        description=(
            "When contacts hold a value for the attribute, the call is refused with 409 and a "
            "message saying how many; repeat it with `?confirm=true` to delete the attribute "
            "**and remove those values** (this cannot be undone — archive it to hide it "
            "instead). Without values, no confirmation is needed."
        ),
        parameters=[
            KEY,
            OpenApiParameter(
                "confirm",
                OpenApiTypes.BOOL,
                description="true: delete even though contacts hold values (they are removed).",
            ),
        ],
        responses={
            200: AttributeDeletedSerializer,
            **errors(
                400,
                404,
                409,
                e404=NOT_FOUND,
                e409="Contacts hold values: the message says how many; confirm to go ahead.",
            ),
        },
    )
    def delete(self, request: Request, key: str) -> Response:
        confirm = query_flag(request.query_params, "confirm")
        definition = definition_or_404(api_agent(request), key)
        if not confirm:
            held = services.attribute_value_count(definition=definition)
            if held:
                refusal = ConflictError(
                    f"{held:,} contact(s) hold a value for {key!r}. Deleting the attribute "
                    "removes those values for good; repeat with ?confirm=true to go ahead, "
                    "or archive the attribute to hide it and keep them.",
                    fields={"confirm": [f"{held} contact(s) hold a value; send confirm=true."]},
                )
                refusal.code = "confirmation_required"
                raise refusal
        removed = services.attribute_delete(definition=definition)
        return Response({"key": key, "values_removed": removed})


class AttributeArchive(APIView):
    archived = True

    @extend_schema(
        operation_id="attributes_archive",
        tags=["attributes"],
        summary="Archive an attribute (hide it, keep its values)",
        parameters=[KEY],
        request=None,
        responses={200: AttributeSerializer, **errors(404, e404=NOT_FOUND)},
    )
    def post(self, request: Request, key: str) -> Response:
        definition = definition_or_404(api_agent(request), key)
        definition = services.attribute_set_archived(definition=definition, archived=self.archived)
        return Response(definition_json(definition))


class AttributeRestore(AttributeArchive):
    archived = False

    @extend_schema(
        operation_id="attributes_restore",
        tags=["attributes"],
        summary="Restore an archived attribute",
        parameters=[KEY],
        request=None,
        responses={200: AttributeSerializer, **errors(404, e404=NOT_FOUND)},
    )
    def post(self, request: Request, key: str) -> Response:
        return super().post(request, key)
