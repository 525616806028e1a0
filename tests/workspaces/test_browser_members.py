"""End to end in Chromium: an admin invites a teammate and copies the link; the teammate
opens it in their own browser, sets a password and lands in the dashboard as staff, where
Members is read-only and admin pages are refused; removed, they are signed out at once."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Browser, expect

from tests.browser import (
    DESKTOP,
    PHONE,
    page_overflow,
    readme_shot,
    require_axe,
    serious_axe_violations,
    sign_in,
)
from workspaces.models import Invitation, Membership, WorkspaceEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

NEW_PASSWORD = "harbour-violet-engine-7"


def _checked(page, name: str, problems: list[str]) -> None:
    if page_overflow(page):
        problems.append(f"{name}: the page scrolls sideways {page_overflow(page)}")
    problems.extend(f"{name}: {v}" for v in serious_axe_violations(page))


def test_an_invited_teammate_joins_as_staff_and_reads_members_only(
    live_server, browser: Browser, agent, admin_user, settings
):
    require_axe()
    settings.EMAIL_ENABLED = False
    base = live_server.url
    members = f"{base}/a/{agent.public_id}/settings/members/"
    problems: list[str] = []

    # The admin invites sam@acme.test as staff and copies the link.
    admin = browser.new_context(viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"])
    admin_page = admin.new_page()
    sign_in(admin_page, base, admin_user.username)
    admin_page.get_by_role("navigation", name="Sections").get_by_role(
        "link", name="Settings"
    ).click()
    admin_page.get_by_role("navigation", name="Settings").get_by_role(
        "link", name="Members"
    ).click()
    expect(admin_page).to_have_url(members)
    admin_page.get_by_label("Email").fill("Sam@Acme.test")
    admin_page.get_by_label("Role").select_option("staff")
    admin_page.get_by_role("button", name="Create invitation").click()
    notice = admin_page.locator("#new-invitation")
    expect(notice).to_contain_text("Invitation link for sam@acme.test")
    expect(notice).to_contain_text("this server sends no email")
    admin_page.get_by_role("button", name="Copy link").click()
    expect(admin_page.get_by_role("button", name="Copied")).to_be_visible()
    link = admin_page.evaluate("() => navigator.clipboard.readText()")
    assert re.fullmatch(rf"{re.escape(base)}/invitations/[A-Za-z0-9_-]{{40,}}/", link), link
    expect(admin_page.locator("#invitations")).to_contain_text("sam@acme.test")
    _checked(admin_page, "members with a new link", problems)
    readme_shot(admin_page, "members.png", full_page=True)

    # Sam opens it in a browser of their own, on a phone.
    sam = browser.new_context(viewport=PHONE)
    sam_page = sam.new_page()
    sam_page.goto(link)
    expect(sam_page.get_by_role("heading", name="Join Acme")).to_be_visible()
    expect(sam_page.locator("main")).to_contain_text("to join as Staff")
    _checked(sam_page, "invitation", problems)
    readme_shot(sam_page, "phone-invitation.png")
    sam_page.get_by_label("Your name").fill("Sam Carter")
    sam_page.get_by_label("Password", exact=True).fill("short")
    sam_page.get_by_label("Password again").fill("short")
    sam_page.get_by_role("button", name="Create account and join").click()
    expect(sam_page.locator("#id_password1_error")).to_contain_text("too short")
    expect(sam_page.get_by_label("Password", exact=True)).to_be_focused()
    _checked(sam_page, "invitation with errors", problems)
    sam_page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    sam_page.get_by_label("Password again").fill(NEW_PASSWORD)
    sam_page.get_by_role("button", name="Create account and join").click()
    expect(sam_page).to_have_url(f"{base}/a/{agent.public_id}/contacts/")
    expect(sam_page.locator(".flashes")).to_contain_text("Welcome to Acme. You are Staff here.")
    assert Membership.objects.get(user__username="sam@acme.test").role == "staff"

    # As staff, Settings opens Members, read-only.
    sam_page.get_by_role("navigation", name="Sections").get_by_role("link", name="Settings").click()
    expect(sam_page).to_have_url(members)
    table = sam_page.locator("table.members-table")
    expect(table).to_contain_text("Sam Carter")
    expect(table).to_contain_text("admin@acme.test")
    expect(sam_page.locator("main form")).to_have_count(0)
    expect(sam_page.locator("main button")).to_have_count(0)
    expect(sam_page.locator("main select")).to_have_count(0)
    expect(sam_page.get_by_text("Invite a member")).to_have_count(0)
    _checked(sam_page, "members, read-only", problems)
    for path in ("settings/", "settings/identity/", "attributes/", "contacts/import/"):
        response = sam_page.goto(f"{base}/a/{agent.public_id}/{path}")
        assert response.status == 403, path

    # The admin sees Sam joined (audit log) and removes them; Sam is signed out at once.
    admin_page.goto(members)
    expect(admin_page.locator("#activity")).to_contain_text(
        "sam@acme.test created an account and joined as Staff"
    )
    expect(admin_page.locator("#invitations")).to_contain_text("No pending invitations.")
    admin_page.once("dialog", lambda dialog: dialog.accept())
    admin_page.get_by_role("button", name="Remove sam@acme.test").click()
    expect(admin_page.locator(".flashes")).to_contain_text("sam@acme.test was removed from Acme")
    sam_page.goto(f"{base}/a/{agent.public_id}/contacts/")
    expect(sam_page).to_have_url(re.compile(r"/login/"))
    assert not Invitation.objects.filter(accepted_at__isnull=True).exists()
    assert list(WorkspaceEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "invitation.created",
        "invitation.accepted",
        "member.removed",
    ]

    # Signing in again works, but the workspace is no longer theirs.
    sam_page.fill("input[name=username]", "sam@acme.test")
    sam_page.fill("input[name=password]", NEW_PASSWORD)
    sam_page.click("button[type=submit]")
    # Back to the page they were on: it is no longer theirs.
    expect(sam_page.locator("main")).to_contain_text("Nothing here")
    sam_page.goto(base)
    expect(sam_page.locator("main")).to_contain_text("You are not in a workspace yet")

    admin.close()
    sam.close()
    assert problems == [], "\n".join(problems)


def test_forgot_password_is_one_click_from_sign_in_and_passes_axe(live_server, page, admin_user):
    require_axe()
    problems: list[str] = []
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        page.goto(f"{live_server.url}/login/")
        page.get_by_role("link", name="Forgot password?").click()
        expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
        _checked(page, f"password reset {viewport['width']}", problems)
        page.get_by_label("Email").fill(admin_user.username)
        page.get_by_role("button", name="Send the reset link").click()
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
        _checked(page, f"reset sent {viewport['width']}", problems)
    assert problems == [], "\n".join(problems)
