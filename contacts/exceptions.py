from __future__ import annotations


class ContactError(Exception):
    """A refused contact operation; `code` is stable for API clients, `message` is for people."""

    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ContactValidationError(ContactError):
    """Input that cannot be stored; `fields` maps each field to what is wrong with it."""

    code = "validation_error"

    def __init__(self, fields: dict[str, list[str]]) -> None:
        first = next(iter(fields.items()))
        summary = f"{first[0]}: {first[1][0]}"
        if len(fields) > 1:
            summary += f" (and {len(fields) - 1} more)"
        super().__init__(summary, fields=fields)


class ContactConflict(ContactError):
    """The operation contradicts the data (merging two different external ids)."""

    code = "conflict"


class ContactForbidden(ContactError):
    """The channel may not do this (an unverified caller touching a verified contact)."""

    code = "forbidden"


class ContactPayloadTooLarge(ContactError):
    """The input (an import file) is larger than the configured limit."""

    code = "payload_too_large"
