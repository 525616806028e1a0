"""Refusals every channel answers the same way.

A service that refuses raises a `DomainError`: `code` is stable for programs, `message` is
for people, `fields` says what is wrong with each input field, and `status` is the HTTP
status the API and the widget answer with. The API's exception handler
(`core.api.errors`) and the widget endpoints (`identity.widget_http`) turn any of them
into `{"error": {"code", "message", "fields"}}` without a table of their own.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refused operation."""

    code = "invalid"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        fields: dict[str, list[str]] | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class ValidationFailed(DomainError):
    """Input that cannot be stored; `fields` maps each field to what is wrong with it."""

    code = "validation_error"

    def __init__(self, fields: dict[str, list[str]], *, code: str | None = None) -> None:
        first = next(iter(fields.items()))
        summary = f"{first[0]}: {first[1][0]}"
        if len(fields) > 1:
            summary += f" (and {len(fields) - 1} more)"
        super().__init__(summary, fields=fields, code=code)


class ConflictError(DomainError):
    """The operation contradicts the data (merging two different external ids)."""

    code = "conflict"
    status = 409


class ForbiddenError(DomainError):
    """The channel may not do this (an unverified caller touching a verified contact)."""

    code = "forbidden"
    status = 403


class TooLargeError(DomainError):
    """The input (an import file, a request body) is larger than the configured limit."""

    code = "payload_too_large"
    status = 413
