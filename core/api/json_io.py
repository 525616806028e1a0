"""JSON in and out of the API, with orjson.

The parser refuses bodies over API_MAX_BODY_BYTES with 413 before reading them (DRF streams
the request body past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check, so nothing else would),
and refuses what the database could not store anyway: lone surrogates, NaN and Infinity,
nesting deeper than 1,024 levels (orjson rejects them all, where the standard library lets
lone surrogates through to a PostgreSQL encoding error and deep nesting to a RecursionError).

The renderer is orjson too: serializing a page of 500 contacts is several times faster than
DRF's JSONRenderer (measured in docs/PERFORMANCE.md).
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.utils.encoders import JSONEncoder

_fallback = JSONEncoder()


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than {limit:,} bytes; send fewer contacts per call."
    )


class ApiJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        if request is not None:
            meta = request.META
            try:
                declared = int(meta.get("CONTENT_LENGTH") or 0)
            except (TypeError, ValueError):
                declared = 0
            if declared > limit:
                raise _too_large(limit)
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise _too_large(limit)
        if not body.strip():
            raise ParseError("The request body is empty; send a JSON object.")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"The request body is not valid JSON: {exc}.") from None


class ApiJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_fallback.default)
