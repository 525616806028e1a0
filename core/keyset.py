"""The one keyset cursor: an opaque, URL-safe token naming a position in an ordered list.

A cursor is base64url JSON. It comes back from the client, so decoding trusts nothing: any
malformation (not base64, not JSON, too long, nested, a time that does not exist) is an
`InvalidCursor`, which every list answers as a 400 or by starting from the first page.
The fields inside belong to whoever pages: the contacts table and API (sort value, id,
direction), a contact's conversations, the inbox.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any

# A cursor holds one sort value and an id: anything longer was not made here.
MAX_CURSOR_LENGTH = 2048


class InvalidCursor(ValueError):
    """The cursor is not one of ours (or names a position that cannot exist)."""

    def __init__(self, message: str = "The cursor is not valid; start again from the first page."):
        super().__init__(message)


def encode_cursor(payload: dict[str, Any]) -> str:
    """`payload` (JSON-serializable; datetimes as ISO strings) as a cursor."""
    text = json.dumps(payload, separators=(",", ":"), default=_iso)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, keys: tuple[str, ...]) -> dict[str, Any]:
    """The payload of `cursor`, which must be an object holding at least `keys`."""
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidCursor from None
    if not isinstance(payload, dict) or any(key not in payload for key in keys):
        raise InvalidCursor
    return payload


def cursor_moment(value: Any) -> datetime:
    """A time from a cursor: ISO 8601 with an offset, and representable in UTC."""
    if not isinstance(value, str):
        raise InvalidCursor
    try:
        moment = datetime.fromisoformat(value)
        moment.astimezone(UTC)  # year 10000 (or 0) in UTC does not exist
    except (ValueError, OverflowError):
        raise InvalidCursor from None
    if moment.tzinfo is None:
        raise InvalidCursor
    return moment


def cursor_uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidCursor from None


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot go into a cursor")
