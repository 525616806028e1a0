"""data-user-email / -name / -phone on the widget's script tag, in Chromium: the visitor is
self-reported on load, and a signed identify of the page still verifies them and wins."""

from __future__ import annotations

import json
import os
from html import escape

import pytest
from playwright.sync_api import Page

from contacts.models import Contact
from identity.models import VisitorSession
from tests.identity.customer_site import CustomerSite
from tests.identity.test_browser_widget import _sign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def site(live_server, agent):
    shop = CustomerSite(live_server, agent.public_id)
    yield shop
    shop.close()


def _page(site: CustomerSite, path: str, user: dict[str, str], script: str = "") -> str:
    """A page whose widget tag carries data-user-* (and, optionally, the page's own script,
    run as soon as the widget is loaded)."""
    attributes = "".join(f' data-user-{k}="{escape(v)}"' for k, v in user.items())
    on_load = (
        f'<script>window.addEventListener("rapportLoaded", function () {{ {script} }});</script>'
        if script
        else ""
    )
    return site.html(
        path,
        f"""<!doctype html><html><head><title>Shop</title>{on_load}
<script src="{site.widget_src}" data-agent="{site.agent_public_id}"{attributes} async></script>
</head><body><h1>Shop</h1></body></html>""",
    )


@pytest.fixture
def identify_bodies(page: Page) -> list[dict]:
    bodies: list[dict] = []
    page.on(
        "request",
        lambda r: (
            bodies.append(r.post_data_json)
            if r.url.endswith("/identify") and r.method == "POST"
            else None
        ),
    )
    return bodies


def _unsigned(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "visitor_id"}


def test_data_user_attributes_identify_the_visitor_as_self_reported_on_load(
    page: Page, site, agent, identify_bodies
):
    url = _page(
        site,
        "/signup/thanks",
        {"email": "  grace@Example.COM ", "name": " Grace Lead ", "phone": "   "},
    )
    page.goto(url)
    page.wait_for_function("() => window.Rapport")
    page.evaluate("() => Rapport.ready")

    assert [_unsigned(b) for b in identify_bodies] == [
        {"email": "grace@Example.COM", "name": "Grace Lead"}  # trimmed; the empty phone left out
    ]
    assert page.evaluate("() => Rapport.contact")["identity"] == "self_reported"
    contact = Contact.objects.get(agent=agent)
    assert (contact.email, contact.name, contact.phone, contact.identity) == (
        "grace@example.com",
        "Grace Lead",
        "",
        "self_reported",
    )
    visitor_id = page.evaluate("() => Rapport.visitorId")
    assert VisitorSession.objects.get(agent=agent, visitor_id=visitor_id).contact_id == contact.pk


def test_without_data_user_attributes_nothing_is_sent_on_load(
    page: Page, site, agent, identify_bodies
):
    page.goto(_page(site, "/plain", {"email": " ", "name": ""}))
    page.wait_for_function("() => window.Rapport")
    page.evaluate("() => Rapport.ready")
    assert identify_bodies == []
    assert not Contact.objects.filter(agent=agent).exists()
    # With data-user-* on the tag, the same page does identify: this test's quiet is the
    # attributes' absence, not a widget that never reads them.
    page.goto(_page(site, "/typed", {"email": "lead@example.com"}))
    page.wait_for_function("() => window.Rapport")
    page.evaluate("() => Rapport.ready")
    assert [_unsigned(b) for b in identify_bodies] == [{"email": "lead@example.com"}]


def test_a_signed_identify_of_the_page_comes_after_the_script_tag_and_verifies(
    page: Page, site, agent, identify_bodies
):
    token = _sign(agent, user_id="u-7", contact_attributes={"name": "Grace Hopper"})
    signed_page = _page(
        site,
        "/account",
        {"email": "grace@example.com", "name": "Grace Lead"},
        # Called the moment the widget loads: the script tag's identify is already queued.
        f"window.signed = Rapport.identify({{ token: {json.dumps(token)} }});",
    )
    page.goto(signed_page)
    page.wait_for_function("() => window.signed")
    result = page.evaluate("() => window.signed")
    assert result["contact"]["identity"] == "verified"
    assert [sorted(_unsigned(b)) for b in identify_bodies] == [["email", "name"], ["token"]]
    assert page.evaluate("() => Rapport.contact")["identity"] == "verified"

    verified = Contact.objects.get(agent=agent, external_id="u-7")
    assert (verified.identity, verified.name) == ("verified", "Grace Hopper")
    # The self-reported contact the tag made a moment before was this visitor's: folded in.
    assert Contact.objects.filter(agent=agent).count() == 1
    assert verified.email == "grace@example.com"

    # Later pages still carry data-user-*, with other details: the visitor stays verified and
    # the unsigned values change nothing.
    page.goto(_page(site, "/shop", {"email": "someone@example.com", "name": "Someone Else"}))
    page.wait_for_function("() => window.Rapport")
    page.evaluate("() => Rapport.ready")
    assert page.evaluate("() => Rapport.contact") == {
        "id": str(verified.pk),
        "name": "Grace Hopper",
        "identity": "verified",
    }
    verified.refresh_from_db()
    assert (verified.identity, verified.name, verified.email) == (
        "verified",
        "Grace Hopper",
        "grace@example.com",
    )
    assert not Contact.objects.filter(agent=agent, email="someone@example.com").exists()
