"""What the contacts views share: their URLs, the one-time notice above the table, and
errors worded for a message or a flash."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest
from django.urls import reverse

from contacts.selectors import parse_contact_id
from core.errors import DomainError

MAX_BULK = 1000


NOTICE_KEY = "contacts_notice"


def list_url(agent) -> str:
    return reverse("contacts:list", kwargs={"agent_public_id": agent.public_id})


def detail_url_for(agent):
    prefix = list_url(agent)
    return lambda contact: f"{prefix}{contact.pk}/"


def stash_notice(request: HttpRequest, agent, text: str, *, undo_ids: list[str] | None = None):
    """A one-time notice for the next table render (survives the redirect after a POST)."""
    request.session[NOTICE_KEY] = {"agent": agent.public_id, "text": text, "undo": undo_ids or []}


def pop_notice(request: HttpRequest, agent) -> dict[str, Any] | None:
    notice = request.session.get(NOTICE_KEY)
    if not notice or notice.get("agent") != agent.public_id:
        return None
    del request.session[NOTICE_KEY]
    return notice


def uuids(ids: list[str]) -> list[Any]:
    return [pk for pk in (parse_contact_id(i) for i in ids) if pk is not None]


def error_text(error: DomainError) -> str:
    """A service error as one sentence (field messages when there are some)."""
    return " ".join(m for ms in error.fields.values() for m in ms) or error.message


def flash_error(request: HttpRequest, error: DomainError) -> None:
    messages.error(request, error_text(error))
