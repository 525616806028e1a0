"""Reading an API request: bodies through a serializer, query flags, and NUL refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def refuse_nul(params: Mapping[str, Any]) -> None:
    """NUL cannot be stored or compared by PostgreSQL; refuse it before it reaches a query."""
    bad = [
        str(key)
        for key in params
        if "\x00" in str(key) or any("\x00" in v for v in params.getlist(key))
    ]
    if bad:
        raise serializers.ValidationError({k: ["May not contain NUL characters."] for k in bad})


def query_flag(params: Mapping[str, Any], name: str) -> bool:
    """A boolean parameter: absent is false; present, it must say true or false."""
    if name not in params:
        return False
    raw = str(params.get(name)).strip().lower()
    if raw in ("false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise serializers.ValidationError({name: [f"Use {name}=true or {name}=false."]})
