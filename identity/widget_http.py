"""HTTP plumbing shared by every public widget endpoint (identify, conversations, messages).

Widget calls come from customers' pages on any origin and carry no cookies: CORS allows any
origin, CSRF does not apply (there is no ambient credential to abuse), and every answer is
JSON, errors included, in the API's shape {"error": {"code", "message", "fields"}}.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core import ratelimit
from core.api.errors import DATABASE_RETRY_AFTER, DATABASE_UNAVAILABLE
from core.errors import DomainError
from core.observability import bind
from core.ratelimit import client_address
from workspaces.agent_cache import cached_agent
from workspaces.models import Agent

logger = logging.getLogger("rapport.identity")


class WidgetError(DomainError):
    """A refused widget call (400 unless said otherwise)."""

    def __init__(
        self, code: str, message: str, *, status: int = 400, fields: dict | None = None
    ) -> None:
        super().__init__(message, code=code, status=status, fields=fields)


# The deepest legitimate body: {"token", "user_metadata": {"key": [values]}} with room to
# spare. Deeper bodies only cost time to walk, store and echo back.
MAX_BODY_DEPTH = 8


def error_response(
    code: str, message: str, *, status: int, fields: dict | None = None
) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": code, "message": message, "fields": fields or {}}}, status=status
    )


def _cors(response: HttpResponse) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
    # A widget on another origin reads how long to wait after a 429 or a 503.
    response["Access-Control-Expose-Headers"] = "Retry-After"
    response["Access-Control-Max-Age"] = "86400"
    response["Cache-Control"] = "no-store"
    return response


def read_json(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object, or a WidgetError saying exactly what is wrong."""
    too_large = WidgetError(
        "payload_too_large",
        f"The body is larger than {settings.WIDGET_MAX_BODY_BYTES} bytes.",
        status=413,
    )
    # Refuse by the declared length before reading: a body beyond Django's own upload limit
    # would otherwise surface as a bare HTML 400 instead of this JSON 413.
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > settings.WIDGET_MAX_BODY_BYTES:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(body) > settings.WIDGET_MAX_BODY_BYTES:
        raise too_large
    try:
        data = json.loads(body or b"{}", parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WidgetError("invalid_json", f"The body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise WidgetError(
            "invalid_json", "The body is nested too deeply; a widget call is a flat object."
        ) from None
    if not isinstance(data, dict):
        raise WidgetError("invalid_json", "The body must be a JSON object.")
    if _deeper_than(data, MAX_BODY_DEPTH):
        raise WidgetError(
            "invalid_json",
            f"The body is nested more than {MAX_BODY_DEPTH} levels deep; widget calls carry "
            "flat objects of values.",
        )
    return data


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN and ±Infinity; JSON does not have them, nor does any column.
    raise WidgetError("invalid_json", f"The body is not valid JSON: {name} is not a JSON number.")


def _deeper_than(value: Any, limit: int) -> bool:
    """True when containers nest more than `limit` levels (checked without recursion); a
    number that reads as infinity (1e400: JSON has no such value) is refused on the way."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise WidgetError(
                "invalid_json", "The body holds a number too large for JSON (it reads as infinity)."
            )
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def bearer_token(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def _rate_limited(request: HttpRequest, agent: Agent) -> HttpResponse | None:
    """429 when this client address, or this agent as a whole, is over its widget rate."""
    by_address, by_agent = ratelimit.hit_many(
        [
            (
                "widget-ip",
                f"{agent.pk}:{client_address(request)}",
                settings.WIDGET_RATE_LIMIT_PER_ADDRESS,
            ),
            ("widget-agent", str(agent.pk), settings.WIDGET_RATE_LIMIT_PER_AGENT),
        ]
    )
    for verdict, who in ((by_address, "this address"), (by_agent, "this agent")):
        if not verdict.allowed:
            response = error_response(
                "rate_limited",
                f"Too many calls from {who}; try again in {verdict.retry_after} s.",
                status=429,
            )
            response["Retry-After"] = str(verdict.retry_after)
            return response
    return None


def _call(view, request, agent_public_id, limited, *args, **kwargs) -> HttpResponse:
    agent: Agent | None = cached_agent(public_id=agent_public_id)
    if agent is None:
        return error_response("not_found", "No such agent.", status=404)
    bind(agent_id=agent.pk)
    if request.method in limited and (refused := _rate_limited(request, agent)):
        return refused
    try:
        return view(request, agent, *args, **kwargs)
    except DomainError as exc:  # WidgetError, IdentifyError and the services' refusals
        return error_response(exc.code, exc.message, status=exc.status, fields=exc.fields)


def widget_endpoint(*, methods: tuple[str, ...], limited: tuple[str, ...] = ()) -> Callable:
    """Wrap a widget view `(request, agent, ...) -> HttpResponse`: resolves the agent from
    its public id (404 JSON when unknown), answers CORS preflights, applies the widget rate
    limits to the `limited` methods (those that can create contacts), turns WidgetError
    into JSON errors, and adds CORS headers to every answer."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, agent_public_id: str, *args, **kwargs) -> HttpResponse:
            if request.method == "OPTIONS":
                return _cors(HttpResponse(status=204))
            if request.method not in methods:
                response = error_response(
                    "method_not_allowed", f"Use {' or '.join(methods)}.", status=405
                )
                response["Allow"] = ", ".join((*methods, "OPTIONS"))
                return _cors(response)
            try:
                response = _call(view, request, agent_public_id, limited, *args, **kwargs)
            except (OperationalError, InterfaceError) as exc:
                # The database went away mid-request; the call is safe to send again (identify
                # may have marked a signed visitor seen before it failed, nothing more).
                logger.warning("widget call failed, database unavailable: %s", type(exc).__name__)
                response = error_response("service_unavailable", DATABASE_UNAVAILABLE, status=503)
                response["Retry-After"] = str(DATABASE_RETRY_AFTER)
            return _cors(response)

        return wrapper

    return decorator
