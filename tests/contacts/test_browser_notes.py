"""Notes and "Merge with…" on the contact page, in a real browser (Chromium through
Playwright): write a note, see it with its author, edit it, delete it; find the other
contact and land on the merge preview. Both at desktop and phone width, checked by axe."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect

from contacts.models import AuditEvent, Note
from tests.browser import (
    DESKTOP,
    PHONE,
    demo_workspace,
    page_overflow,
    require_axe,
    serious_axe_violations,
    sign_in,
)
from tests.factories import ContactFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Playwright's sync API runs an event loop in this thread (see test_browser_dashboard.py).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def demo(db) -> dict:
    data = demo_workspace()
    data["twin"] = ContactFactory(
        agent=data["agent"], name="Ada Byron", email="ada.byron@analytical.example"
    )
    return data


def _contact_page(page: Page, live_server, demo) -> str:
    sign_in(page, live_server.url, demo["user"].username)
    url = f"{live_server.url}/a/{demo['agent'].public_id}/contacts/{demo['ada'].pk}/"
    page.goto(url)
    expect(page.get_by_role("heading", name="Ada Lovelace", level=1)).to_be_visible()
    return url


def _problems(page: Page, name: str) -> list[str]:
    if folder := os.environ.get("SCREENS_DIR"):  # to look at each state: SCREENS_DIR=/tmp/s
        width = page.viewport_size["width"]
        page.screenshot(path=f"{folder}/{width}-{name.replace(' ', '-')}.png", full_page=True)
    found = [f"{name}: {v}" for v in serious_axe_violations(page)]
    overflow = page_overflow(page)
    if overflow:
        found.append(f"{name}: the page scrolls sideways {overflow}")
    return found


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_note_is_written_edited_and_deleted_in_place(live_server, browser, demo, viewport):
    require_axe()
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    url = _contact_page(page, live_server, demo)
    problems = _problems(page, "contact page")

    notes = page.locator("#contact-notes")
    composer = page.get_by_label("Add a note")
    composer.fill("Promised a refund by Friday.\nSee https://billing.example.com/r/42")
    composer.press("Control+Enter")
    note = notes.locator("li.note").first
    expect(note).to_contain_text("Promised a refund by Friday.")
    expect(note.locator(".note-author")).to_have_text(demo["user"].username)
    expect(note.get_by_role("link", name="https://billing.example.com/r/42")).to_have_attribute(
        "rel", "noopener nofollow ugc"
    )
    expect(composer).to_have_value("")
    expect(page).to_have_url(url)  # no page load: htmx swapped the card
    expect(page.locator("#contact-history")).to_contain_text("Note added")
    problems += _problems(page, "contact page with a note")

    # An empty note is refused beside the field, and nothing is added.
    composer.fill("   ")
    page.get_by_role("button", name="Add note").click()
    expect(notes.locator("#note-error")).to_have_text("Write something in the note first.")
    expect(page.get_by_label("Add a note")).to_be_focused()
    expect(notes.locator("li.note")).to_have_count(1)
    problems += _problems(page, "contact page with a refused note")

    note.get_by_text("Edit").click()
    note.get_by_label("Text of the note").fill("Refund sent on Thursday.")
    note.get_by_role("button", name="Save note").click()
    expect(note.locator(".note-body")).to_have_text("Refund sent on Thursday.")
    expect(note.locator(".note-edited")).to_have_text("edited")
    expect(page.locator("#contact-history")).to_contain_text("Note edited")

    page.once("dialog", lambda dialog: dialog.accept())
    note.get_by_role("button", name="Delete this note").click()
    expect(notes.locator("li.note")).to_have_count(0)
    expect(notes).to_contain_text("No notes yet.")
    expect(page.locator("#contact-history")).to_contain_text("Note deleted")
    assert not Note.objects.exists()
    history = AuditEvent.objects.filter(contact_id=demo["ada"].pk).values_list("changes", flat=True)
    assert "Refund" not in str(list(history))
    context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_merge_with_finds_the_other_contact_and_opens_the_preview(
    live_server, browser, demo, viewport
):
    require_axe()
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    url = _contact_page(page, live_server, demo)

    page.get_by_role("link", name="Merge with…").click()
    search = page.get_by_label("Search contacts by name, email, phone or external ID")
    expect(search).to_be_focused()
    expect(page).to_have_url(url)  # opened inside the page
    search.fill("byron")
    results = page.locator("#merge-candidates")
    expect(results).to_contain_text("1 contact match “byron”")
    expect(results.locator(".candidate-name")).to_have_text(["Ada Byron"])
    problems = _problems(page, "merge with (in the contact page)")

    # Escape closes it and gives the focus back to the button.
    search.press("Escape")
    expect(page.locator("#merge-search")).to_have_count(0)
    expect(page.get_by_role("link", name="Merge with…")).to_be_focused()

    page.get_by_role("link", name="Merge with…").click()
    expect(search).to_be_focused()  # htmx has set the field up once it has the focus
    search.fill("byron")
    page.get_by_role("link", name="Review merge with Ada Byron").click()
    expect(page.get_by_role("heading", name="Merge contacts")).to_be_visible()
    expect(page).to_have_url(
        re.compile(rf"/merge/\?primary={demo['ada'].pk}&secondary={demo['twin'].pk}$")
    )
    expect(page.get_by_role("button", name="Merge Ada Byron into Ada Lovelace")).to_be_visible()
    problems += _problems(page, "merge preview")

    # Its own page, for a link or without JavaScript.
    page.goto(f"{url}merge-with/?q=ada")
    expect(page.locator("#merge-candidates .candidate-name")).to_contain_text(["Ada Byron"])
    problems += _problems(page, "merge with (page)")
    context.close()
    assert problems == [], "\n".join(problems)
