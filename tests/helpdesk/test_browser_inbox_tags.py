"""In Chromium: the inbox's tag picker narrows the list in place and the tabs keep the tags;
it fits a phone and passes axe-core."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from contacts.models import Contact
from tests.browser import (
    DESKTOP,
    PHONE,
    page_overflow,
    require_axe,
    serious_axe_violations,
    sign_in,
)
from tests.factories import ContactFactory, ConversationFactory, MessageFactory, TagFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _shot(page: Page, name: str) -> None:
    if folder := os.environ.get("SCREENS_DIR"):  # to look: SCREENS_DIR=/tmp/s
        page.screenshot(path=f"{folder}/{page.viewport_size['width']}-{name}.png")


def _fits_and_passes_axe(page: Page, name: str) -> None:
    _shot(page, name)
    assert page_overflow(page) is None, name
    assert serious_axe_violations(page) == [], name


def _tags_in(url: str) -> list[str]:
    return parse_qs(urlsplit(url).query).get("tag", [])


@pytest.fixture
def inbox_people(agent):
    vip = TagFactory(agent=agent, name="VIP")
    trial = TagFactory(agent=agent, name="Trial")
    for n in range(12):
        TagFactory(agent=agent, name=f"segment-{n:02d}-with-a-long-name")
    now = timezone.now()
    people = {}
    for name, tags, minutes in (
        ("Ada Lovelace", [vip], 1),
        ("Bob Stone", [trial], 2),
        ("Cy Untagged", [], 3),
    ):
        contact = ContactFactory(agent=agent, name=name)
        for tag in tags:
            contact.contact_tags.create(tag=tag)
        conversation = ConversationFactory(
            agent=agent,
            contact=contact,
            subject=f"Question from {name}",
            last_message_at=now - timedelta(minutes=minutes),
        )
        MessageFactory(conversation=conversation, body="Hello")
        people[name] = conversation
    closed = ConversationFactory(
        agent=agent,
        contact=Contact.objects.get(name="Ada Lovelace"),
        subject="Old closed question",
        status="closed",
        last_message_at=now - timedelta(days=1),
    )
    people["closed"] = closed
    return people


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_tag_picker_narrows_the_inbox_and_the_tabs_keep_it(
    live_server, page: Page, agent, staff_user, inbox_people, viewport
):
    require_axe()
    page.set_viewport_size(viewport)
    sign_in(page, live_server.url, staff_user.username)
    page.goto(f"{live_server.url}/a/{agent.public_id}/inbox/")
    expect(page.locator("tr.inbox-row")).to_have_count(3)

    page.get_by_text("Tags", exact=True).click()
    picker = page.get_by_role("group", name="Contact has any of these tags")
    expect(picker).to_be_visible()
    _fits_and_passes_axe(page, "inbox-tag-picker")

    # Ticking a tag narrows the list in place; the address follows.
    picker.get_by_label("VIP").check()
    expect(page.locator("tr.inbox-row")).to_have_count(1)
    expect(page.locator("#inbox-list")).to_contain_text("Ada Lovelace")
    expect(page).to_have_url(re.compile(r"tag=VIP"))
    expect(page.locator("#inbox-tag-count")).to_contain_text("(1)")

    # A second tag: contacts with either.
    picker.get_by_label("Trial").check()
    expect(page.locator("tr.inbox-row")).to_have_count(2)
    expect(page.locator("#inbox-list")).to_contain_text(
        "Contacts tagged “Trial” or “VIP” (any of them)"
    )
    assert sorted(_tags_in(page.url)) == ["Trial", "VIP"]

    # Search within the tags.
    page.fill("input[name=q]", "stone")
    expect(page.locator("tr.inbox-row")).to_have_count(1)
    expect(page.locator("#inbox-list")).to_contain_text("Bob Stone")
    page.fill("input[name=q]", "")
    expect(page.locator("tr.inbox-row")).to_have_count(2)

    # The tabs were re-drawn with the tags: the Closed tab stays within them.
    page.mouse.click(5, 5)  # close the picker
    page.get_by_role("navigation", name="Conversation status").get_by_role(
        "link", name="Closed"
    ).click()
    expect(page).to_have_url(re.compile(r"status=closed"))
    assert sorted(_tags_in(page.url)) == ["Trial", "VIP"]
    expect(page.locator("tr.inbox-row")).to_have_count(1)
    expect(page.locator("#inbox-list")).to_contain_text("Old closed question")
    _fits_and_passes_axe(page, "inbox-tagged-closed")
