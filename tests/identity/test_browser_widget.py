"""The widget script in Chromium: on our demo page, and on a customer page of another origin."""

from __future__ import annotations

import os
import time

import jwt
import pytest
from playwright.sync_api import Page, expect

from contacts.models import Contact
from tests.identity.customer_site import CustomerSite
from workspaces.selectors import identity_secret_current

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Playwright's sync API runs an event loop in this thread; the ORM calls of the test are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "correct horse battery"


def _sign(agent, **claims) -> str:
    secret = identity_secret_current(agent=agent).secret
    return jwt.encode({"exp": int(time.time()) + 300, **claims}, secret, algorithm="HS256")


def _login(page: Page, live_server, user) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/a/**")


# Every rapportLoaded event the page saw, for the tests to read.
LOADED_EVENTS = """<script>
  window.loadedEvents = [];
  window.addEventListener("rapportLoaded", function (e) { window.loadedEvents.push(e.detail); });
</script>"""


@pytest.fixture
def customer_sites(live_server):
    sites: list[CustomerSite] = []

    def make(agent_public_id: str) -> CustomerSite:
        sites.append(CustomerSite(live_server, agent_public_id))
        return sites[-1]

    yield make
    for site in sites:
        site.close()


def test_the_demo_page_identifies_with_a_jwt_and_the_contact_is_verified_in_the_dashboard(
    page: Page, live_server, admin_user, agent, settings
):
    settings.WIDGET_DEMO_ENABLED = True
    _login(page, live_server, admin_user)
    page.goto(f"{live_server.url}/demo/widget/?agent={agent.public_id}")
    expect(page.locator("#demo")).to_have_attribute("data-ready", "true")
    expect(page.locator("#demo-status")).to_have_text("anonymous")

    page.select_option("#demo-user", "1002")
    page.click("#demo-jwt")
    expect(page.locator("#demo-status")).to_have_text("verified")
    expect(page.locator("#demo-contact")).to_contain_text("Grace Hopper")
    expect(page.locator("#demo-output")).to_contain_text('"session_context"')

    contact = Contact.objects.get(agent=agent)
    assert (contact.external_id, contact.email, contact.identity) == (
        "1002",
        "grace@example.com",
        "verified",
    )
    page.goto(f"{live_server.url}/a/{agent.public_id}/contacts/")
    row = page.locator("table.data tbody tr", has_text="Grace Hopper")
    expect(row.locator(".badge")).to_have_text("Verified")


def test_a_customer_page_on_another_origin_identifies_across_cors(
    page: Page, customer_sites, agent
):
    url = customer_sites(agent.public_id).page("/shop/", head=LOADED_EVENTS, poll=False)
    page.goto(url)
    page.wait_for_function("() => window.Rapport && window.loadedEvents.length === 1")
    visitor_id = page.evaluate("() => window.loadedEvents[0].visitorId")
    assert visitor_id == page.evaluate("() => Rapport.visitorId")

    token = _sign(agent, user_id=7, contact_attributes={"name": "Katherine Johnson"})
    result = page.evaluate(
        "token => Rapport.identify({ token, user_metadata: { cart: 3 } })", token
    )
    assert result["ok"] is True
    assert result["contact"]["identity"] == "verified"
    assert result["contact"]["name"] == "Katherine Johnson"
    assert result["session_context"] == {"cart": 3}
    contact = Contact.objects.get(agent=agent)
    assert (contact.external_id, contact.identity) == ("7", "verified")
    assert str(contact.pk) == result["contact"]["id"]

    # A bad token resolves to an error (no exception in the host page) and changes nothing.
    bad = page.evaluate("() => Rapport.identify({ token: 'not.a.token' })")
    assert bad["ok"] is False
    assert bad["status"] == 401
    assert bad["error"]["code"] == "malformed_token"
    nonsense = page.evaluate("() => Rapport.identify('who am I')")
    assert nonsense["error"]["code"] == "invalid_arguments"

    # The session survives a reload: the stored token proves this browser is the visitor.
    page.reload()
    page.wait_for_function("() => window.Rapport && window.loadedEvents.length === 1")
    assert page.evaluate("() => Rapport.visitorId") == visitor_id
    again = page.evaluate("() => Rapport.identify({})")
    assert again["contact"]["id"] == str(contact.pk)

    # Signing out forgets the visitor.
    page.evaluate("() => Rapport.reset()")
    assert page.evaluate("() => Rapport.visitorId") != visitor_id
    assert page.evaluate("() => Rapport.identify({})")["contact"] is None


def test_a_verified_visitor_stays_known_on_the_help_center(page: Page, customer_sites, agent):
    shop_url = customer_sites(agent.public_id).page("/shop/", head=LOADED_EVENTS, poll=False)
    help_url = customer_sites(agent.public_id).page("/help/article", head=LOADED_EVENTS, poll=False)
    page.goto(shop_url)
    page.wait_for_function("() => window.Rapport")
    token = _sign(agent, user_id="hop-1", contact_attributes={"name": "Mary Jackson"})
    page.evaluate("token => Rapport.identify({ token })", token)
    link = page.evaluate("url => Rapport.linkWithIdentity(url)", help_url + "?lang=en")
    assert "rapport_identity=" in link
    assert "lang=en" in link

    page.goto(link)
    page.wait_for_function("() => window.Rapport")
    page.evaluate("() => Rapport.ready")
    contact = page.evaluate("() => Rapport.contact")
    assert contact["identity"] == "verified"
    assert contact["name"] == "Mary Jackson"
    assert "rapport_identity" not in page.url  # out of the address bar and history
    assert "lang=en" in page.url
    assert Contact.objects.filter(agent=agent).count() == 1


def test_a_wrong_agent_id_resolves_to_an_error_without_throwing(page: Page, customer_sites):
    url = customer_sites("ag_doesnotexist00").page("/shop/", head=LOADED_EVENTS, poll=False)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_function("() => window.Rapport")
    result = page.evaluate("() => Rapport.identify({ email: 'x@example.com' })")
    assert result["ok"] is False
    assert result["error"]["code"] == "not_found"
    assert errors == []
