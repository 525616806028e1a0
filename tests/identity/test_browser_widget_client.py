"""The widget script's help-desk calls speak the widget contract of docs/ARCHITECTURE.md.

The conversation endpoints belong to the help desk; here they are stood in for by the
browser, so the test pins down exactly what the script sends and how it handles answers.
"""

from __future__ import annotations

import json
import os

import pytest
from playwright.sync_api import Page, Route

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def host_page(page: Page, live_server, agent) -> Page:
    """A page on Rapport's own origin that embeds the widget (so the stand-ins need no CORS)."""
    html = (
        "<!doctype html><html><head>"
        f'<script src="/static/widget/rapport.js" data-agent="{agent.public_id}"></script>'
        "</head><body>host</body></html>"
    )
    page.route(
        f"{live_server.url}/host/",
        lambda route: route.fulfill(status=200, content_type="text/html", body=html),
    )
    page.goto(f"{live_server.url}/host/")
    page.wait_for_function("() => window.Rapport")
    return page


def _json(route: Route, status: int, body: dict) -> None:
    route.fulfill(status=status, content_type="application/json", body=json.dumps(body))


def test_conversation_calls_carry_the_session_token_and_the_contract_bodies(host_page: Page):
    seen: list[dict] = []
    answers = {"conversations": [401, 201]}  # the first token is "expired": re-identify once

    def conversations(route: Route) -> None:
        request = route.request
        seen.append(
            {
                "url": request.url,
                "method": request.method,
                "auth": request.headers.get("authorization"),
                "body": request.post_data_json if request.method == "POST" else None,
            }
        )
        if request.url.endswith("/conversations"):
            status = answers["conversations"].pop(0)
            if status == 401:
                _json(route, 401, {"error": {"code": "invalid_session", "message": "expired"}})
            else:
                _json(route, 201, {"conversation": {"id": "c-1", "status": "open"}})
        elif request.method == "POST":
            _json(route, 201, {"message": {"id": "m-2", "role": "visitor", "body": "Thanks"}})
        else:
            _json(route, 200, {"messages": [{"id": "m-3", "role": "bot", "body": "Hi!"}]})

    host_page.route("**/widget/v1/*/conversations", conversations)
    host_page.route("**/widget/v1/*/conversations/*/messages*", conversations)
    identifies: list[str] = []
    host_page.on(
        "request",
        lambda r: identifies.append(r.method) if r.url.endswith("/identify") else None,
    )

    # No identify yet: starting a conversation first makes an anonymous session.
    started = host_page.evaluate("() => Rapport.startConversation('Hello there')")
    assert started == {"ok": True, "status": 201, "conversation": {"id": "c-1", "status": "open"}}
    first, second = seen[0], seen[1]
    assert first["body"] == second["body"] == {"message": "Hello there"}
    assert first["auth"].startswith("Bearer ")
    assert second["auth"].startswith("Bearer ")
    assert identifies == ["POST", "POST"]  # before the first call, and after its 401

    sent = host_page.evaluate("() => Rapport.sendMessage('c-1', 'Thanks')")
    assert sent["message"]["id"] == "m-2"
    assert seen[2]["method"] == "POST"
    assert seen[2]["url"].endswith("/conversations/c-1/messages")
    assert seen[2]["body"] == {"body": "Thanks"}

    listed = host_page.evaluate("() => Rapport.getMessages('c-1', 'm-2')")
    assert listed["messages"][0]["body"] == "Hi!"
    assert seen[3]["method"] == "GET"
    assert seen[3]["url"].endswith("/conversations/c-1/messages?after=m-2")
    assert {s["auth"] for s in seen[1:]} == {second["auth"]}


def test_help_desk_errors_resolve_without_throwing(host_page: Page):
    errors: list[str] = []
    host_page.on("pageerror", lambda exc: errors.append(str(exc)))
    host_page.route(
        "**/widget/v1/*/conversations",
        lambda route: route.fulfill(status=500, content_type="text/html", body="<h1>oops</h1>"),
    )
    result = host_page.evaluate("() => Rapport.startConversation('Hello')")
    assert result["ok"] is False
    assert result["status"] == 500
    assert result["error"]["code"] == "http_500"
    missing = host_page.evaluate("() => Rapport.sendMessage(null, 'x')")
    assert missing["error"]["code"] == "invalid_arguments"
    assert errors == []
