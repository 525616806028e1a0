"""Helpers the tests of every app share: dashboard URLs, the API client and error shape,
and racing threads against each other."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from html import unescape
from typing import Any

from django.db import connections
from django.test import Client
from django.urls import reverse

HX = {"HTTP_HX_REQUEST": "true"}

CONTACT_FIELDS = {
    "id", "external_id", "name", "email", "phone", "avatar_url", "company", "identity",
    "verified_at", "attributes", "tags", "stripe_accounts", "first_seen_at", "last_seen_at",
    "created_at", "updated_at", "deleted_at",
}  # fmt: skip


# --- Dashboard URLs ------------------------------------------------------------------------


def list_url(agent) -> str:
    return reverse("contacts:list", kwargs={"agent_public_id": agent.public_id})


def contact_url(name: str, contact, agent=None, **kwargs) -> str:
    agent = agent or contact.agent
    return reverse(
        f"contacts:{name}",
        kwargs={"agent_public_id": agent.public_id, "contact_id": contact.pk, **kwargs},
    )


def agent_url(name: str, agent, **kwargs) -> str:
    return reverse(name, kwargs={"agent_public_id": agent.public_id, **kwargs})


def table_names(response) -> list[str]:
    """Contact names in the dashboard table's order, read from the row links."""
    html = response.content.decode()
    return [
        unescape(name)
        for name in re.findall(
            r'class="contact-link"[^>]*>.*?<span class="long-name"[^>]*>([^<]*)</span></a>',
            html,
            re.S,
        )
    ]


# --- The REST API ----------------------------------------------------------------------------


class ApiClient(Client):
    """A test client whose bodies are JSON unless told otherwise."""

    def post(self, path, data=None, content_type="application/json", **extra):
        return super().post(path, data, content_type=content_type, **extra)

    def patch(self, path, data="", content_type="application/json", **extra):
        return super().patch(path, data, content_type=content_type, **extra)


def error(response) -> dict:
    """The error of an API answer, checked to be in the one error shape."""
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


# --- Concurrency -----------------------------------------------------------------------------


def race(target: Callable[[int], Any], count: int = 8, *, timeout: float = 60) -> list[Any]:
    """Run `target(0)` … `target(count - 1)` in threads released at the same instant, each
    on its own database connection; their results (any exception fails the test)."""
    barrier = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(target(index))
        except Exception as exc:  # reported below, with the others
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not errors, errors[:3]
    return results
