"""The interactive API docs render under the Content-Security-Policy: operations are listed,
and the browser reports no blocked script or style."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_the_swagger_page_lists_the_operations(live_server, page: Page):
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    page.goto(f"{live_server.url}/api/v1/docs/")

    expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=15000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/contacts/" in p for p in paths), paths
    assert any("/api/v1/conversations/" in p for p in paths), paths
    assert page.locator(".opblock").count() > 20
    assert [p for p in problems if "Content Security Policy" in p or "Refused" in p] == []
    assert problems == []
