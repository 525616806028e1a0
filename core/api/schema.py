"""The API's OpenAPI plumbing: strict request bodies, the one error shape on every
operation, and `errors(...)` for documenting an endpoint's error answers."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiResponse

from core.api.fields import ErrorSerializer


class StrictSerializerScheme(OpenApiSerializerExtension):
    """Request bodies refuse unknown fields, so their schema says additionalProperties: false."""

    target_class = "core.api.fields.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema


_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}
_RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before trying again.",
    }
}
_COMMON_RESPONSES = {
    "401": {
        "description": "Missing, malformed, unknown or revoked API key.",
        "headers": {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer realm"}
        },
        "content": {"application/json": {"schema": _ERROR_REF}},
    },
    "429": {
        "description": "Too many requests for this API key (API_RATE_LIMIT).",
        "headers": _RETRY_AFTER,
        "content": {"application/json": {"schema": _ERROR_REF}},
    },
    "503": {
        "description": "The database could not be reached for a moment; nothing was changed.",
        "headers": _RETRY_AFTER,
        "content": {"application/json": {"schema": _ERROR_REF}},
    },
}


def add_common_error_responses(result, generator, request, public):
    """Every operation that needs an API key can also answer 401, 429 and 503: document them,
    in the one error shape, on every such operation (not only the ones that remember to)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", _ERROR_SCHEMA)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            secured = any(requirement for requirement in operation.get("security", []))
            if not secured:
                continue
            for status, response in _COMMON_RESPONSES.items():
                operation["responses"].setdefault(status, response)
    return result


# --- Documenting an endpoint's errors ----------------------------------------------------------

_ERROR_DESCRIPTIONS = {
    400: "Invalid input: `fields` names each bad field or parameter and says why.",
    404: "Nothing with this id for the API key's agent (ids of other agents are 404 too).",
    409: "The request contradicts the data (see `message`).",
    413: "The request body is larger than the limit (API_MAX_BODY_BYTES, 10 MiB by default).",
    415: "The body is not JSON (send Content-Type: application/json).",
}


def errors(*statuses: int, **descriptions: str) -> dict[int, OpenApiResponse]:
    """Documented error answers, all in the one error shape."""
    out = {}
    for status in statuses:
        text = descriptions.get(f"e{status}", _ERROR_DESCRIPTIONS[status])
        out[status] = OpenApiResponse(ErrorSerializer, description=text)
    return out


BODY_ERRORS = (400, 413, 415)
