"""One error shape for the whole API: {"error": {"code", "message", "fields"}}, with the
status SPEC 5 gives (400 validation, 401 bad key, 404, 409 conflict, 413, 429)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core.api import AUTH_HEADER
from core.errors import DomainError

logger = logging.getLogger("rapport.api")

_CODES = {
    status.HTTP_400_BAD_REQUEST: "validation_error",
    status.HTTP_401_UNAUTHORIZED: "unauthorized",
    status.HTTP_403_FORBIDDEN: "forbidden",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_409_CONFLICT: "conflict",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "throttled",
}


DATABASE_UNAVAILABLE = "The service cannot reach its database for a moment; try again shortly."
DATABASE_RETRY_AFTER = 5


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error details as {"field.sub": ["message", ...]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(key, int):  # list items: "tags[2]", as the services name them
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and not prefix:
                name = "non_field_errors"
            out.update(_flatten(value, name))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every error in one shape; domain errors from the services map to their status."""
    headers: dict[str, str] = {}
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database went away mid-request (a restart, a failover, a killed backend, no
        # free pooled connection): nothing was committed, and the client may retry.
        logger.warning("API request failed, database unavailable: %s", type(exc).__name__)
        return Response(
            error_body("service_unavailable", DATABASE_UNAVAILABLE),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "You may not do this.")

    if isinstance(exc, DomainError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)

    if not isinstance(exc, exceptions.APIException):
        return None
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(max(int(exc.wait), 1))
    http_status = exc.status_code
    if http_status == status.HTTP_403_FORBIDDEN and isinstance(exc, exceptions.NotAuthenticated):
        http_status = status.HTTP_401_UNAUTHORIZED
    if http_status == status.HTTP_401_UNAUTHORIZED:
        headers.setdefault("WWW-Authenticate", AUTH_HEADER)
    code = _CODES.get(http_status, "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first_field, messages = next(iter(fields.items()), ("", ["Invalid input."]))
        message = (
            f"{first_field}: {messages[0]}" if first_field != "non_field_errors" else messages[0]
        )
        body = error_body(code, message, fields)
    else:
        body = error_body(code, str(exc.detail))
    set_rollback()
    return Response(body, status=http_status, headers=headers)
