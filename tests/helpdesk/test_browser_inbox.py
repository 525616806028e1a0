"""End to end in Chromium: a visitor writes through the widget endpoints, a staff member
finds the conversation in the inbox, sees who it is in the sidebar, and replies."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect

from helpdesk.models import Message
from identity.models import VisitorSession
from identity.sessions import session_token_issue
from tests.factories import AttributeFactory, ContactFactory, TagFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Playwright's sync API runs an event loop in this thread; the test's ORM calls (and the
# database teardown after it) are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_staff_sees_the_verified_visitor_and_replies(live_server, page: Page, agent, staff_user):
    AttributeFactory(agent=agent, key="plan", label="Plan", type="select", options=["pro"])
    contact = ContactFactory(
        agent=agent,
        name="Ada Lovelace",
        email="ada@example.com",
        external_id="user-42",
        attributes={"plan": "pro"},
    )
    contact.contact_tags.create(tag=TagFactory(agent=agent, name="VIP"))
    session = VisitorSession.objects.create(
        agent=agent, visitor_id="v-ada", contact=contact, signed=True
    )
    token = session_token_issue(session=session, agent=agent)
    widget = f"{live_server.url}/widget/v1/{agent.public_id}"
    auth = {"Authorization": f"Bearer {token}"}

    console_errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            console_errors.append(f"{m.text} ({m.location.get('url', '')})")
            if m.type == "error"
            else None
        ),
    )

    # The visitor writes from the widget.
    started = page.request.post(
        f"{widget}/conversations", headers=auth, data={"message": "My invoice is wrong"}
    )
    assert started.status == 201
    conversation_id = started.json()["conversation"]["id"]

    # Staff signs in and opens the inbox.
    page.goto(f"{live_server.url}/login/?next=/a/{agent.public_id}/inbox/")
    page.fill("input[name=username]", staff_user.username)
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Inbox")
    row = page.locator("tr.inbox-row").first
    expect(row).to_contain_text("Ada Lovelace")

    # Search as you type narrows the list in place and the URL follows.
    page.fill("input[name=q]", "nobody-like-this")
    expect(page.locator("#inbox-list")).to_contain_text("No conversation matches")
    expect(page).to_have_url(re.compile(r"q=nobody-like-this"))
    page.fill("input[name=q]", "lovelace")
    expect(page.locator("tr.inbox-row")).to_have_count(1)
    expect(row).to_contain_text("Verified")
    expect(row).to_contain_text("My invoice is wrong")

    # The conversation page: transcript and the contact sidebar.
    row.get_by_role("link", name="Ada Lovelace").click()
    expect(page).to_have_url(f"{live_server.url}/a/{agent.public_id}/inbox/{conversation_id}/")
    expect(page.locator("#transcript")).to_contain_text("My invoice is wrong")
    sidebar = page.locator("#contact-sidebar")
    expect(sidebar.locator("#identity-badge")).to_have_text(re.compile(r"^Verified"))
    expect(sidebar).to_contain_text("ada@example.com")
    expect(sidebar).to_contain_text("user-42")
    expect(sidebar.locator("#sidebar-attributes")).to_contain_text("pro")
    expect(sidebar.locator("#sidebar-tags")).to_contain_text("VIP")

    # Staff replies (htmx swaps the conversation in place, no page load).
    page.fill(".reply-box textarea", "Sorry about that, Ada. Fixing it now.")
    page.click(".reply-box button[type=submit]")
    expect(page.locator("#transcript")).to_contain_text("Sorry about that, Ada. Fixing it now.")
    expect(page.locator(".reply-box textarea")).to_have_value("")

    reply = Message.objects.get(conversation_id=conversation_id, role="staff")
    assert reply.author == staff_user

    # The widget sees the reply, and a new visitor message shows up on the page by polling.
    listed = page.request.get(f"{widget}/conversations/{conversation_id}/messages", headers=auth)
    assert [m["role"] for m in listed.json()["messages"]] == ["visitor", "staff"]
    page.request.post(
        f"{widget}/conversations/{conversation_id}/messages",
        headers=auth,
        data={"body": "Thank you!"},
    )
    expect(page.locator("#transcript")).to_contain_text("Thank you!", timeout=15_000)

    # Escalating from the page.
    page.get_by_role("button", name="Escalate").click()
    expect(page.locator("#conversation-status")).to_have_text("Escalated")

    # No errors on the pages: nothing broke the Content-Security-Policy (no inline scripts or
    # styles), no missing static file, no htmx complaint.
    # (The browser's own favicon request is not ours.)
    assert [e for e in console_errors if "/favicon.ico)" not in e] == []
