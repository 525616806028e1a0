"""The contacts dashboard in a real browser (Debian's Chromium through Playwright).

Each test signs in through the login page and works the screens the way a support lead
does. The tests also refresh the screenshots under docs/screenshots/.
"""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect

from attributes.models import AttributeDefinition
from contacts.models import AuditEvent, Contact
from tests.browser import DESKTOP, PHONE, demo_workspace, htmx_settled, readme_shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Playwright's sync API starts an event loop that keeps running until the test session ends,
# and Django refuses synchronous database work while a loop runs in the thread: the ORM calls
# here, the flush after each transactional test, and those of every test that runs later in
# the session. A fixture would cover only this module, so the switch is process-wide.
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
    htmx_settled(page)  # the search box listens once htmx has wired it up
    return contacts


def _rows(page: Page):
    return page.locator("table.contacts tbody tr")


def test_search_narrows_the_table_and_headers_sort_it(live_server, page: Page, demo):
    contacts = _sign_in(page, live_server, demo)
    expect(_rows(page)).to_have_count(50)
    readme_shot(page, "contacts-table.png")

    page.fill("#contact-search", "lovel")
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).first).to_contain_text("Ada Lovelace")
    expect(page).to_have_url(re.compile(r"\?q=lovel"))

    page.fill("#contact-search", "")
    expect(_rows(page)).to_have_count(50)
    page.get_by_role("link", name="Email").click()
    expect(page.locator('th[aria-sort="ascending"]')).to_contain_text("Email")
    expect(page).to_have_url(re.compile(r"ordering=email"))
    live = Contact.objects.filter(deleted_at__isnull=True)
    # Contacts without an email come last, in both directions.
    emails = sorted(e.lower() for e in live.values_list("email", flat=True) if e)
    first_email = _rows(page).first.locator("td").nth(2)
    expect(first_email).to_have_text(emails[0])
    page.get_by_role("link", name="Email").click()
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Email")
    expect(_rows(page).first.locator("td").nth(2)).to_have_text(emails[-1])

    # The back button returns to the ascending sort (the URL holds the state).
    page.go_back()
    expect(page).to_have_url(re.compile(r"ordering=email$"))
    expect(page.locator('th[aria-sort="ascending"]')).to_contain_text("Email")
    assert contacts in page.url


def test_an_attribute_column_from_the_chooser_stays_after_reload(live_server, page: Page, demo):
    contacts = _sign_in(page, live_server, demo)
    page.get_by_text("Columns", exact=True).click()
    page.get_by_role("checkbox", name="MRR (USD)").check()
    expect(page.locator("table.contacts thead")).to_contain_text("MRR (USD)")
    expect(page).to_have_url(re.compile(r"cols=.*attr\.mrr"))
    page.reload()
    expect(page.locator("table.contacts thead")).to_contain_text("MRR (USD)")
    # Remembered for this user: the bare address shows it too.
    page.goto(contacts)
    expect(page.locator("table.contacts thead")).to_contain_text("MRR (USD)")
    page.get_by_role("link", name="MRR (USD)").click()
    expect(page).to_have_url(re.compile(r"ordering=-attr\.mrr"))


def test_editing_a_typed_attribute_shows_in_the_history(live_server, page: Page, demo):
    _sign_in(page, live_server, demo)
    page.fill("#contact-search", "lovelace")
    expect(_rows(page)).to_have_count(1)
    page.get_by_role("link", name="Ada Lovelace").click()
    page.get_by_role("link", name="Edit", exact=True).first.click()
    page.get_by_label("MRR (USD)").fill("12345678901234567")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".field.has-error")).to_contain_text("more than 15 digits")
    page.get_by_label("MRR (USD)").fill("249.5")
    page.get_by_label("Plan").select_option("Enterprise")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".flash")).to_contain_text("Saved 2 changes.")
    history = page.locator("#contact-history")
    expect(history).to_contain_text("MRR (USD)")
    expect(history.locator("del").first).to_be_visible()
    expect(history).to_contain_text("120")
    expect(history).to_contain_text("249.5")
    expect(history).to_contain_text(f"by {demo['user'].username}")
    expect(page.locator('[data-attribute="plan"]')).to_have_text("Enterprise")
    readme_shot(page, "contact-page.png", full_page=True)


def test_a_tag_is_added_from_the_suggestion_list(live_server, page: Page, demo):
    _sign_in(page, live_server, demo)
    page.goto(f"{live_server.url}/a/{demo['agent'].public_id}/contacts/{demo['ada'].pk}/")
    page.fill("#tag-input", "enterp")
    suggestion = page.locator("#tag-suggestions button", has_text="enterprise")
    expect(suggestion).to_be_visible()
    suggestion.click()
    expect(page.locator("#contact-tags .chip", has_text="enterprise")).to_be_visible()
    expect(page.locator("#tag-suggestions li")).to_have_count(0)
    expect(page.locator("#contact-history")).to_contain_text("+ enterprise")
    assert set(demo["ada"].tags.values_list("name", flat=True)) == {"vip", "enterprise"}


def test_soft_delete_and_undo(live_server, page: Page, demo):
    contacts = _sign_in(page, live_server, demo)
    page.goto(f"{contacts}{demo['ada'].pk}/")
    page.get_by_role("button", name="Delete contact").click()
    expect(page).to_have_url(contacts)
    notice = page.locator(".notice")
    expect(notice).to_contain_text("Ada Lovelace was deleted.")
    expect(_rows(page).filter(has_text="Ada Lovelace")).to_have_count(0)
    notice.get_by_role("button", name="Undo").click()
    expect(page.locator(".notice")).to_contain_text("Restored 1 contact.")
    page.fill("#contact-search", "lovelace")
    expect(_rows(page)).to_have_count(1)
    assert Contact.objects.get(pk=demo["ada"].pk).deleted_at is None


def test_bulk_selection_tags_and_deletes_rows(live_server, page: Page, demo):
    _sign_in(page, live_server, demo)
    bar = page.locator("[data-bulk-bar]")
    expect(bar).to_be_hidden()
    _rows(page).nth(0).locator("input[type=checkbox]").check()
    _rows(page).nth(1).locator("input[type=checkbox]").check()
    expect(bar).to_be_visible()
    expect(bar).to_contain_text("2 selected")
    bar.locator("#bulk-tag").fill("follow-up-q3")
    bar.get_by_role("button", name="Add tag").click()
    expect(page.locator(".notice")).to_contain_text("Tagged 2 contacts")
    assert Contact.objects.filter(tags__name="follow-up-q3").count() == 2
    page.locator("input[data-select-all]").check()
    expect(bar).to_contain_text("50 selected")
    bar.get_by_role("button", name="Delete").click()
    expect(page.locator(".notice")).to_contain_text("Deleted 50 contacts.")
    page.get_by_role("link", name="Deleted").click()
    expect(_rows(page)).to_have_count(50)


def test_erase_needs_the_typed_confirmation(live_server, page: Page, demo):
    contacts = _sign_in(page, live_server, demo)
    ada = demo["ada"]
    page.goto(f"{contacts}{ada.pk}/")
    page.get_by_role("link", name="Erase permanently…").click()
    page.get_by_label(re.compile("to confirm")).fill("ada@")
    page.get_by_role("button", name="Erase permanently").click()
    expect(page.locator(".field-error")).to_contain_text("Type ada@analytical.example exactly")
    assert Contact.objects.filter(pk=ada.pk).exists()
    page.get_by_label(re.compile("to confirm")).fill("ada@analytical.example")
    page.get_by_role("button", name="Erase permanently").click()
    expect(page).to_have_url(contacts)
    expect(page.locator(".flash")).to_contain_text("The contact was erased")
    assert not Contact.objects.filter(pk=ada.pk).exists()
    assert AuditEvent.objects.filter(contact_id=ada.pk, action="erased").exists()
    response = page.goto(f"{contacts}{ada.pk}/")
    assert response.status == 404


def test_the_attribute_schema_page(live_server, page: Page, demo):
    _sign_in(page, live_server, demo)
    page.get_by_role("link", name="Attributes").click()
    expect(page.locator("#attribute-table tr[data-key]")).to_have_count(8)
    readme_shot(page, "attribute-schema.png")
    page.get_by_label("Label").fill("Region")
    page.get_by_label("Key").fill("region")
    page.get_by_label("Type").select_option("select")
    page.get_by_label("Options").fill("EMEA\nAMER\nAPAC")
    page.get_by_role("button", name="Add attribute").click()
    expect(page.locator(".flash")).to_contain_text("Added the attribute “Region”.")
    last = page.locator("#attribute-table tr[data-key]").last
    expect(last).to_have_attribute("data-key", "region")
    page.get_by_role("button", name="Move Region up").click()
    expect(page.locator("#attribute-table tr[data-key]").nth(7)).to_have_attribute(
        "data-key", "region"
    )

    def keys() -> list[str]:
        return list(
            AttributeDefinition.objects.filter(agent=demo["agent"])
            .order_by("position")
            .values_list("key", flat=True)
        )

    assert keys()[-2:] == ["region", "lifetime_value"]
    # Drag and drop: City goes to the top.
    rows = page.locator("#attribute-table tr[data-key]")
    with page.expect_response(re.compile(r"/attributes/reorder/$")) as saved:
        rows.filter(has_text="City").locator(".drag-handle").drag_to(rows.first)
    assert saved.value.status == 200
    expect(rows.first).to_have_attribute("data-key", "city")
    assert keys()[0] == "city"


def _expect_focus(page: Page, focus_id: str) -> None:
    """Wait (htmx settles after the swap) until the control marked `focus_id` has focus."""
    page.wait_for_function(
        "id => document.activeElement?.getAttribute('data-focus-id') === id",
        arg=focus_id,
        timeout=5000,
    )


def test_keyboard_users_reach_the_rows_and_keep_their_place(live_server, page: Page, demo):
    contacts = _sign_in(page, live_server, demo)
    # The first Tab offers a way past the top bar and the filters, straight to the rows.
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_have_text("Skip to the contact table")
    page.keyboard.press("Enter")
    # The link's navigation to #contact-rows runs as a task of its own: focus is on the
    # table's body once it has (a Tab pressed before that, on a loaded machine, left from
    # the skip link and was then overtaken by the navigation).
    expect(page.locator("#contact-rows")).to_be_focused()
    page.keyboard.press("Tab")
    first_row_box = _rows(page).first.locator("input[type=checkbox]")
    expect(first_row_box).to_be_focused()

    # Sorting with Enter keeps focus on the header that was used.
    page.get_by_role("link", name="Email").focus()
    page.keyboard.press("Enter")
    expect(page.locator('th[aria-sort="ascending"]')).to_contain_text("Email")
    expect(page).to_have_url(re.compile(r"ordering=email"))
    _expect_focus(page, "sort-email")
    page.keyboard.press("Enter")
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Email")
    _expect_focus(page, "sort-email")
    assert contacts in page.url

    # Moving an attribute with its ↓ button keeps focus on that button.
    page.goto(f"{live_server.url}/a/{demo['agent'].public_id}/attributes/")
    rows = page.locator("#attribute-table tr[data-key]")
    first_key = rows.first.get_attribute("data-key")
    page.locator(f'[data-focus-id="move-{first_key}-down"]').focus()
    page.keyboard.press("Enter")
    expect(rows.nth(1)).to_have_attribute("data-key", first_key)
    _expect_focus(page, f"move-{first_key}-down")
    # Back to the top: "up" is disabled there, so focus goes to its neighbour.
    page.locator(f'[data-focus-id="move-{first_key}-up"]').focus()
    page.keyboard.press("Enter")
    expect(rows.first).to_have_attribute("data-key", first_key)
    _expect_focus(page, f"move-{first_key}-down")


def test_an_avatar_that_fails_to_load_shows_the_initials(live_server, page: Page, demo):
    ada = demo["ada"]
    Contact.objects.filter(pk=ada.pk).update(
        avatar_url=f"{live_server.url}/static/no-such-avatar.png"
    )
    contacts = _sign_in(page, live_server, demo)
    page.goto(f"{contacts}{ada.pk}/")
    avatar = page.locator(".contact-head .avatar")
    expect(avatar).to_have_text("AL")
    expect(avatar.locator("img")).to_have_count(0)


def test_on_a_phone_the_table_scrolls_in_its_box_and_a_contact_opens(live_server, page: Page, demo):
    page.set_viewport_size(PHONE)
    _sign_in(page, live_server, demo)
    wrap = page.locator("table.contacts").locator(
        "xpath=ancestor::div[contains(@class,'table-wrap')]"
    )
    # The page itself stays at the screen's width; the wide table scrolls inside its box.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")
    readme_shot(page, "phone-contacts.png")
    page.fill("#contact-search", "lovelace")
    expect(_rows(page)).to_have_count(1)
    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page.locator("h1")).to_have_text("Ada Lovelace")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
