"""Conditions and saved segments in a real browser (Chromium through Playwright): the filter
builder's inputs fit the field, "match any" widens the table, and a saved segment reopens
from the sidebar with its whole state."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import (
    DESKTOP,
    PHONE,
    demo_workspace,
    htmx_settled,
    page_overflow,
    readme_shot,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": DESKTOP}


@pytest.fixture
def demo(db) -> dict:
    return demo_workspace()


def _sign_in(page: Page, live_server, demo) -> str:
    sign_in(page, live_server.url, demo["user"].username)
    contacts = f"{live_server.url}/a/{demo['agent'].public_id}/contacts/"
    expect(page).to_have_url(contacts)
    return contacts


def _look(page: Page, name: str) -> None:
    """To look at the screens: SCREENS_DIR=/tmp/s."""
    if folder := os.environ.get("SCREENS_DIR"):
        page.screenshot(path=f"{folder}/segments-{name}.png")


def _rows(page: Page):
    return page.locator("table.contacts tbody tr")


def _choose_condition(builder, label: str) -> None:
    """The condition offered for the chosen field (dates and numbers both have "between";
    the options that do not fit are disabled)."""
    select = builder.get_by_label("Condition")
    index = select.evaluate(
        "(s, label) => Array.from(s.options).findIndex(o => !o.disabled && o.text === label)",
        label,
    )
    assert index >= 0, label
    select.select_option(index=index)


def _add_condition(page: Page, field: str, condition: str, *values: str) -> None:
    page.locator(".filter-builder > summary").click()
    builder = page.locator("[data-filter-builder]")
    builder.get_by_label("Field").select_option(label=field)
    _choose_condition(builder, condition)
    inputs = builder.locator(
        "[data-builder-value] input:not([disabled]), [data-builder-value] select"
    )
    for index, value in enumerate(values):
        inputs.nth(index).fill(value)
    builder.get_by_role("button", name="Add filter").click()


def test_the_builder_fits_the_field_and_match_any_widens_the_table(live_server, page: Page, demo):
    _sign_in(page, live_server, demo)
    page.locator(".filter-builder > summary").click()
    builder = page.locator("[data-filter-builder]")
    # A date field offers relative conditions and a date picker; "between" two inputs.
    builder.get_by_label("Field").select_option(label="Last seen")
    _choose_condition(builder, "between")
    expect(builder.locator("input[name=fvalue]")).to_have_attribute("type", "date")
    expect(builder.locator("input[name=fvalue2]")).to_be_visible()
    _choose_condition(builder, "in the last … days")
    expect(builder.locator("input[name=fvalue]")).to_have_attribute("type", "number")
    expect(builder.locator("input[name=fvalue2]")).to_be_hidden()
    expect(builder.get_by_text("Days", exact=True)).to_be_visible()
    _look(page, "builder")
    page.locator(".filter-builder > summary").click()

    _add_condition(page, "Email", "contains", "analytical")
    expect(page).to_have_url(re.compile(r"email__contains=analytical"))
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).first).to_contain_text("Ada Lovelace")

    _add_condition(page, "Company", "is", "Nobody Incorporated")
    expect(page.locator("table.contacts")).to_contain_text("No contacts match")
    htmx_settled(page)
    page.get_by_label("Match").select_option("any")
    expect(page).to_have_url(re.compile(r"match=any"))
    expect(_rows(page)).to_have_count(1)
    expect(page.locator(".match-joiner")).to_have_text("or")
    _look(page, "match-any")

    # "Has any value" needs no value at all.
    _add_condition(page, "Phone", "has any value")
    expect(page).to_have_url(re.compile(r"phone__exists=true"))
    assert _rows(page).count() > 1
    page.set_viewport_size(PHONE)
    page.locator(".filter-builder > summary").click()
    _look(page, "builder-phone")
    assert page_overflow(page) is None


def test_a_saved_segment_reopens_from_the_sidebar_with_its_whole_state(
    live_server, page: Page, demo
):
    from contacts.models import Segment
    from tests.browser import require_axe, serious_axe_violations

    require_axe()
    contacts = _sign_in(page, live_server, demo)
    page.goto(f"{contacts}?tag=vip&ordering=name&cols=email,company")
    vip_rows = _rows(page).count()
    assert vip_rows >= 1
    page.locator(".segment-save > summary").click()
    page.get_by_label("Segment name").fill("VIP by name")
    page.get_by_label("Share with the team").check()
    page.locator(".segment-save").get_by_role("button", name="Save segment").click()
    expect(page.locator("#segment-heading")).to_have_text("VIP by name")
    segment = Segment.objects.get(name="VIP by name")
    assert segment.shared
    expect(page).to_have_url(re.compile(rf"\?segment={segment.pk}&"))
    expect(page.locator(".flash.notice")).to_contain_text("Saved segment “VIP by name”")
    sidebar = page.locator("nav.segments")
    link = sidebar.get_by_role("link", name=re.compile("VIP by name"))
    expect(link).to_have_attribute("aria-current", "page")
    # The estimate arrives after the page.
    expect(link.locator(".segment-count")).to_have_text(str(vip_rows))
    _look(page, "segment")
    readme_shot(page, "segments.png")

    # Elsewhere, then back from the sidebar: the filters, the sort and the columns return.
    sidebar.get_by_role("link", name="Everyone").click()
    expect(page).to_have_url(contacts)
    expect(page.locator("#segment-heading")).to_have_count(0)
    sidebar.get_by_role("link", name=re.compile("VIP by name")).click()
    expect(page).to_have_url(re.compile(rf"segment={segment.pk}&tag=vip&ordering=name"))
    expect(page.locator(".chip-filter")).to_have_text(re.compile("Tag: vip"))
    expect(page.locator('th[aria-sort="ascending"]')).to_contain_text("Name")
    headers = page.locator("table.contacts thead th").all_inner_texts()
    assert [h.strip(" ▲▼") for h in headers[1:]] == ["Name", "Email", "Company"]
    expect(_rows(page)).to_have_count(vip_rows)

    # A change shows as one; "Update segment" keeps it.
    _add_condition(page, "Conversations", "≥", "1")
    expect(page.locator(".segment-edited")).to_be_visible()
    page.get_by_role("button", name="Update segment").click()
    expect(page.locator(".segment-edited")).to_have_count(0)
    expect(page.locator(".flash.notice")).to_contain_text("Updated “VIP by name”")
    segment.refresh_from_db()
    assert "conversation_count__gte=1" in segment.query

    problems = serious_axe_violations(page)
    page.set_viewport_size(PHONE)
    assert page_overflow(page) is None
    _look(page, "segment-phone")
    problems += serious_axe_violations(page)
    assert problems == []
    page.set_viewport_size(DESKTOP)

    page.locator(".segment-bar summary", has_text="Delete").click()
    page.get_by_role("button", name="Delete segment").click()
    expect(page.locator(".flash.notice")).to_contain_text("Deleted segment “VIP by name”")
    expect(sidebar.get_by_role("link", name=re.compile("VIP by name"))).to_have_count(0)
    assert not Segment.objects.exists()
