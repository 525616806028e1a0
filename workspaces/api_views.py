from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workspaces.api import api_agent


@extend_schema(
    summary="The agent this API key belongs to",
    responses=inline_serializer(
        "Agent",
        {
            "id": serializers.IntegerField(),
            "public_id": serializers.CharField(),
            "name": serializers.CharField(),
            "workspace": serializers.CharField(),
            "default_phone_region": serializers.CharField(),
        },
    ),
)
@api_view(["GET"])
def agent_detail(request: Request) -> Response:
    """Lets an integration check its key and see which agent it writes to."""
    agent = api_agent(request)
    return Response(
        {
            "id": agent.pk,
            "public_id": agent.public_id,
            "name": agent.name,
            "workspace": agent.workspace.name,
            "default_phone_region": agent.default_phone_region,
        }
    )
