"""Cursor-paged API lists: the page_size and cursor parameters and the next/previous URLs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

PAGE_SIZE = OpenApiParameter(
    "page_size",
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
    description=f"Rows per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}).",
)
CURSOR = OpenApiParameter(
    "cursor",
    str,
    description="Opaque position from a previous answer's `next` or `previous` URL.",
)


def query_page_size(params: Mapping[str, Any]) -> int:
    if "page_size" not in params:
        return DEFAULT_PAGE_SIZE
    raw = str(params.get("page_size")).strip()
    # isdigit() alone accepts "²" and "٣", which int() refuses.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not (
        1 <= int(raw) <= MAX_PAGE_SIZE
    ):
        raise serializers.ValidationError(
            {"page_size": [f"Use a whole number from 1 to {MAX_PAGE_SIZE}."]}
        )
    return int(raw)


def page_url(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    params = request.query_params.copy()
    params["cursor"] = cursor
    return request.build_absolute_uri(request.path) + "?" + params.urlencode()
