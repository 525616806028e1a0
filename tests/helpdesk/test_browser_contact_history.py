"""In Chromium: a contact's conversation history re-sorts and pages in place on the contact
page; it fits a phone and passes axe-core."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser import (
    DESKTOP,
    PHONE,
    page_overflow,
    require_axe,
    serious_axe_violations,
    sign_in,
)
from tests.factories import ContactFactory, ConversationFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _shot(page: Page, name: str) -> None:
    if folder := os.environ.get("SCREENS_DIR"):  # to look: SCREENS_DIR=/tmp/s
        page.screenshot(path=f"{folder}/{page.viewport_size['width']}-{name}.png")


def _fits_and_passes_axe(page: Page, name: str) -> None:
    _shot(page, name)
    assert page_overflow(page) is None, name
    assert serious_axe_violations(page) == [], name


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_contacts_history_resorts_and_pages_in_place(
    live_server, page: Page, agent, staff_user, viewport
):
    require_axe()
    contact = ContactFactory(agent=agent, name="Ada Lovelace", conversation_count=25)
    now = timezone.now()
    for n in range(25):
        ConversationFactory(
            agent=agent,
            contact=contact,
            subject=f"Question {n:02d}",
            last_message_at=now - timedelta(hours=25 - n),  # Question 24 is the newest
        )
    page.set_viewport_size(viewport)
    sign_in(page, live_server.url, staff_user.username)
    contact_page = f"{live_server.url}/a/{agent.public_id}/contacts/{contact.pk}/"
    page.goto(contact_page)
    panel = page.locator("#contact-conversations")
    items = panel.locator(".conversation-list li")

    expect(panel.get_by_role("heading", name=re.compile(r"Conversations\s+25"))).to_be_visible()
    expect(items).to_have_count(20)
    expect(items.first).to_contain_text("Question 24")
    _fits_and_passes_axe(page, "contact-history")

    panel.get_by_role("link", name="Older →").click()
    expect(items).to_have_count(5)
    expect(items.first).to_contain_text("Question 04")
    expect(page).to_have_url(contact_page)  # the contact page stays where it is

    panel.get_by_role("link", name="Oldest first").click()
    expect(items.first).to_contain_text("Question 00")
    expect(panel.get_by_role("link", name="Oldest first")).to_have_attribute("aria-current", "true")
    panel.get_by_role("link", name="Newer →").click()
    expect(items).to_have_count(5)
    expect(items.last).to_contain_text("Question 24")
    panel.get_by_role("link", name="← Older").click()
    expect(items).to_have_count(20)
    expect(items.first).to_contain_text("Question 00")
    _fits_and_passes_axe(page, "contact-history-oldest")
