"""Conditions and saved segments in a real browser (Chromium through Playwright): the filter
builder's inputs fit the field, "match any" widens the table, and a saved segment reopens
from the sidebar with its whole state."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import DESKTOP, PHONE, demo_workspace, page_overflow, sign_in

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
