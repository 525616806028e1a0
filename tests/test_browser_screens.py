"""Every screen of the dashboard, at desktop and at phone width (390 px): the page never
scrolls sideways (a wide table scrolls inside its own box) and axe-core finds no
accessibility violation of serious or critical impact."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from attributes.selectors import attribute_definition_map
from contacts.models import Contact
from contacts.services.segments import segment_create
from tests.browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    demo_workspace,
    page_overflow,
    require_axe,
    serious_axe_violations,
    sign_in,
)
from tests.factories import MembershipFactory, UserFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from webhooks.services import endpoint_create
from workspaces.invitations import invitation_create
from workspaces.models import Membership

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CSV = b"email,name,plan\nada@example.com,Ada,Pro\nbob@example.com,Bob,Free\n"


@pytest.fixture
def demo(db, settings, tmp_path) -> dict:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.WIDGET_DEMO_ENABLED = True
    return demo_workspace()


def _screens(base: str, demo: dict) -> list[tuple[str, str]]:
    """(name, path) of every dashboard screen an admin reaches."""
    agent = demo["agent"].public_id
    ada = demo["ada"].pk
    other = Contact.objects.filter(agent=demo["agent"]).exclude(pk=ada).order_by("pk").first()
    a = f"{base}/a/{agent}"
    return [
        ("contacts", f"{a}/contacts/"),
        (
            "contacts, filtered and wide",
            f"{a}/contacts/?cols=name,email,phone,company,tags,"
            "identity,last_seen,created,attr.plan,attr.mrr&attr.plan__ne=Free",
        ),
        ("deleted contacts", f"{a}/contacts/?deleted=true"),
        ("contacts in a segment, match any", f"{a}/contacts/?segment={_segment(demo).pk}"),
        ("contact", f"{a}/contacts/{ada}/"),
        ("new contact", f"{a}/contacts/new/"),
        ("edit contact", f"{a}/contacts/{ada}/edit/"),
        ("erase contact", f"{a}/contacts/{ada}/erase/"),
        ("merge", f"{a}/contacts/merge/?primary={ada}&secondary={other.pk}"),
        ("merge with", f"{a}/contacts/{ada}/merge-with/?q=a"),
        ("inbox", f"{a}/inbox/"),
        ("conversation", f"{a}/inbox/{demo['conversation'].pk}/"),
        ("attributes", f"{a}/attributes/"),
        ("attribute edit", f"{a}/attributes/plan/edit/"),
        ("import", f"{a}/contacts/import/"),
        ("settings", f"{a}/settings/"),
        ("identity settings", f"{a}/settings/identity/"),
        ("members", f"{a}/settings/members/"),
        *_webhook_screens(a, demo),
        ("invitation", f"{base}/invitations/{_invitation_token(demo)}/"),
        ("password reset", f"{base}/password-reset/"),
        ("account", f"{base}/account/"),
        ("widget demo", f"{base}/demo/widget/?agent={agent}"),
        ("not found", f"{a}/contacts/00000000-0000-0000-0000-000000000000/"),
    ]


def _webhook_screens(a: str, demo: dict) -> list[tuple[str, str]]:
    """Settings → Webhooks with an endpoint that keeps failing and one the worker switched
    off, the failing one's delivery log, and a delivery with its bodies."""
    agent, now = demo["agent"], timezone.now()
    failing, _ = endpoint_create(
        agent=agent,
        url="https://hooks.example.com/rapport/contacts?source=rapport&team=support-eu",
        events=["contact.created", "contact.updated", "conversation.status_changed"],
        description="CRM sync (contacts and escalations)",
        user=demo["user"],
    )
    off, _ = endpoint_create(agent=agent, url="https://billing.example.com/in", events=["*"])
    WebhookEndpoint.objects.filter(pk=failing.pk).update(failing_since=now - timedelta(hours=5))
    WebhookEndpoint.objects.filter(pk=off.pk).update(
        enabled=False,
        disabled_reason="Switched off on 2026-01-02 03:04 UTC: every delivery failed for 120 "
        "hours (last: Connection failed: Connection refused)",
    )
    ada = demo["ada"]
    body = json.dumps({"type": "contact.updated", "data": {"contact": {"id": str(ada.pk)}}})
    delivery = None
    for minutes, status, code, error in (
        (1, "pending", 503, "The endpoint answered 503."),
        (20, "failed", 410, "The endpoint answered 410."),
        (90, "succeeded", 200, ""),
    ):
        message = WebhookMessage.objects.create(
            agent=agent, event_type="contact.updated", body=body
        )
        delivery = WebhookDelivery.objects.create(
            endpoint=failing,
            message=message,
            status=status,
            attempts=1,
            response_status=code,
            response_body='{"error": "temporarily unavailable"}' if code != 200 else "",
            latency_ms=184,
            error=error,
            created_at=now - timedelta(minutes=minutes),
            last_attempt_at=now - timedelta(minutes=minutes),
            next_attempt_at=now + timedelta(hours=2),
        )
    endpoint = f"{a}/settings/webhooks/{failing.pk}/"
    return [
        ("webhooks", f"{a}/settings/webhooks/"),
        ("webhook endpoint", endpoint),
        ("webhook delivery", f"{endpoint}deliveries/{delivery.pk}/"),
        ("webhook delete", f"{endpoint}delete/"),
    ]


def _invitation_token(demo: dict) -> str:
    """A pending invitation, so the Members page lists one and its link can be opened."""
    workspace = demo["agent"].workspace
    return invitation_create(
        workspace=workspace, email="new@acme.test", role="staff", invited_by=demo["user"]
    ).raw_token


def _segment(demo: dict):
    """A shared segment of any-of conditions, opened from its link."""
    return segment_create(
        agent=demo["agent"],
        user=demo["user"],
        name="Pro or talking to us",
        shared=True,
        query="match=any&attr.plan=Pro&conversation_count__gte=1&ordering=name",
        definitions=attribute_definition_map(agent=demo["agent"]),
    )


def _check(page: Page, name: str, problems: list[str], ignore: tuple[str, ...] = ()) -> None:
    if folder := os.environ.get("SCREENS_DIR"):  # to look at every screen: SCREENS_DIR=/tmp/s
        width = page.viewport_size["width"]
        page.screenshot(path=f"{folder}/{width}-{name.replace(' ', '-')}.png")
    overflow = page_overflow(page)
    if overflow:
        problems.append(f"{name}: the page scrolls sideways {overflow}")
    problems.extend(f"{name}: {v}" for v in serious_axe_violations(page, ignore=ignore))


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_screen_fits_the_width_and_passes_axe(live_server, browser, demo, viewport):
    require_axe()
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    problems: list[str] = []

    page.goto(f"{live_server.url}/login/")
    _check(page, "sign in", problems)
    sign_in(page, live_server.url, demo["user"].username)
    for name, url in _screens(live_server.url, demo):
        response = page.goto(url)
        assert response.status == (404 if name == "not found" else 200), (name, url)
        _check(page, name, problems)

    # The API docs are Swagger UI's markup: its operation headers nest a button in a button
    # ("nested-interactive"), which only Swagger UI can change; the rest is checked.
    page.goto(f"{live_server.url}/api/v1/docs/")
    expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=15000)
    _check(page, "API docs", problems, ignore=("nested-interactive",))

    # States only reached by acting: a refused form, and an uploaded file's column mapping.
    page.goto(f"{live_server.url}/a/{demo['agent'].public_id}/contacts/new/")
    page.get_by_label("Email").fill("not an email")
    page.get_by_role("button", name="Add contact").click()
    expect(page.locator(".field.has-error").first).to_be_visible()
    # The cursor waits in the first field to fix, with the reason beside it.
    expect(page.get_by_label("Email")).to_be_focused()
    _check(page, "new contact with errors", problems)

    page.goto(f"{live_server.url}/a/{demo['agent'].public_id}/contacts/import/")
    page.set_input_files(
        "input[type=file]", files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": CSV}]
    )
    page.get_by_role("button", name="Upload and map columns").click()
    expect(page.locator("table.mapping-table")).to_be_visible()
    _check(page, "import mapping", problems)
    context.close()
    assert problems == [], "\n".join(problems)


def test_a_staff_member_sees_a_branded_403_that_fits_a_phone(live_server, browser, demo):
    require_axe()
    staff = UserFactory(username="agent@acme.test", password=PASSWORD)
    MembershipFactory(user=staff, workspace=demo["agent"].workspace, role=Membership.Role.STAFF)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    sign_in(page, live_server.url, staff.username)
    response = page.goto(f"{live_server.url}/a/{demo['agent'].public_id}/attributes/")
    assert response.status == 403
    expect(page.locator("main")).to_contain_text("admin")
    problems: list[str] = []
    _check(page, "forbidden", problems)
    context.close()
    assert problems == [], "\n".join(problems)


LONG_NAME = "Wolfeschlegelsteinhausenbergerdorff" * 5  # 175 characters, not one space


def test_a_long_unbroken_name_neither_stretches_the_table_nor_the_page(live_server, page, demo):
    from contacts.services import contact_create
    from core.actors import Actor
    from tests.factories import ConversationFactory

    agent = demo["agent"]
    actor = Actor.staff(demo["user"], is_admin=True)
    long = contact_create(agent=agent, actor=actor, data={"name": LONG_NAME}).contact
    ConversationFactory(agent=agent, contact=long, subject="Hello")
    sign_in(page, live_server.url, demo["user"].username)
    a = f"{live_server.url}/a/{agent.public_id}"
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        page.goto(f"{a}/contacts/?q=Wolfe")
        name = page.locator("table.contacts .contact-link .long-name")
        expect(name).to_have_count(1)
        # Cut to two lines at most, the whole name on hover.
        assert name.get_attribute("title") == LONG_NAME
        box = name.bounding_box()
        assert box["width"] <= 16 * 14 + 1, box
        assert box["height"] < 3 * 14 * 1.45, box
        assert page_overflow(page) is None
        for path in (f"contacts/{long.pk}/", f"contacts/{long.pk}/edit/", "inbox/"):
            page.goto(f"{a}/{path}")
            assert page_overflow(page) is None, (viewport, path, page_overflow(page))
        page.goto(f"{a}/contacts/{long.pk}/")
        heading = page.locator("h1").bounding_box()
        assert heading["x"] + heading["width"] <= viewport["width"], heading


def test_a_conversation_reads_and_answers_on_a_phone(live_server, page, demo):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server.url, demo["user"].username)
    agent = demo["agent"].public_id
    page.goto(f"{live_server.url}/a/{agent}/inbox/{demo['conversation'].pk}/")
    # The transcript gets the screen's width, not one character per line.
    bubble = page.locator(".bubble").first.bounding_box()
    assert bubble["width"] > 200, bubble
    assert bubble["height"] < 120, bubble
    reply = page.get_by_placeholder("Write a reply… (Ctrl+Enter sends)")
    assert reply.bounding_box()["width"] > 300
    reply.fill("Your invoice is attached to your account page.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".bubble-staff").last).to_contain_text("Your invoice is attached")
    assert page_overflow(page) is None
