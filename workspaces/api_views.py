from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workspaces.api import api_agent
from workspaces.api_errors import error_body


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


@csrf_exempt  # API clients send no CSRF token: any method gets the JSON 404, not a 403 page
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """Any /api/ path no route matches (a malformed contact id included): 404 in the API's
    error shape rather than the dashboard's HTML page."""
    from django.urls import Resolver404, resolve

    message = "No API endpoint at this path."
    if not request.path.endswith("/"):
        try:
            resolve(request.path + "/")
            message += f" Did you mean {request.path}/ ?"
        except Resolver404:
            pass
    return JsonResponse(error_body("not_found", message), status=404)
