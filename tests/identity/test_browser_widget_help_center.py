"""data-help-center in Chromium: a verified visitor's click on a help-center link carries a
single-use token to the help center (another origin), where the widget signs them in."""

from __future__ import annotations

import os
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from contacts.models import Contact
from identity import snippets
from identity.models import HandoffTokenUse, VisitorSession
from tests.identity.customer_site import CustomerSite
from tests.identity.test_browser_widget import _login, _sign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


class HelpCenterHop:
    """A shop and a help center, each on its own origin and both embedding the widget. The
    shop's script tag is the settings page's snippet, with the help center's host in
    data-help-center instead of help.example.com."""

    def __init__(self, live_server, agent) -> None:
        self.shop = CustomerSite(live_server, agent.public_id)
        self.help = CustomerSite(live_server, agent.public_id)
        self.help_host = urlsplit(self.help.origin).netloc  # 127.0.0.1:<port>
        self.article = f"{self.help.origin}/help/article"
        # The same help center under another host name: not listed, so not a help center.
        self.elsewhere = self.article.replace("127.0.0.1", "localhost")
        snippet = snippets.page_snippet(
            widget_url=self.shop.widget_src, agent_public_id=agent.public_id
        )
        tag = snippet[: snippet.index("</script>") + len("</script>")]
        assert 'data-help-center="help.example.com"' in tag
        tag = tag.replace("help.example.com", self.help_host.upper())  # case does not matter
        self.shop_url = self.shop.html(
            "/shop/",
            f"""<!doctype html><html><head><title>Shop</title>{tag}
</head><body><h1>Shop</h1>
<p><a id="help" href="{self.article}?lang=en">Help</a></p>
<p><a id="elsewhere" href="{self.elsewhere}?lang=en">Elsewhere</a></p>
<p><a id="help-tab" href="{self.article}?lang=de" target="_blank">Help in a new tab</a></p>
</body></html>""",
        )
        self.help.page("/help/article", poll=False)

    def close(self) -> None:
        self.shop.close()
        self.help.close()


@pytest.fixture
def hop(live_server, agent):
    sites = HelpCenterHop(live_server, agent)
    yield sites
    sites.close()


@pytest.fixture
def navigations(context: BrowserContext) -> list[str]:
    """Every page load the browser asks for, in any tab, with its full query string."""
    seen: list[str] = []
    context.on(
        "request",
        lambda request: seen.append(request.url) if request.is_navigation_request() else None,
    )
    return seen


@pytest.fixture
def token_calls(context: BrowserContext) -> list[str]:
    seen: list[str] = []
    context.on(
        "request",
        lambda request: seen.append(request.url) if "/identity-token" in request.url else None,
    )
    return seen


def _open_shop(page: Page, hop: HelpCenterHop) -> None:
    page.goto(hop.shop_url)
    page.wait_for_function("() => window.Rapport")


def _verify(page: Page, agent, user_id: str = "hop-1", name: str = "Mary Jackson") -> None:
    token = _sign(agent, user_id=user_id, contact_attributes={"name": name})
    result = page.evaluate("token => Rapport.identify({ token })", token)
    assert result["contact"]["identity"] == "verified"


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _follow(page: Page, selector: str, navigations: list[str], prefix: str) -> str:
    """Click a link and wait until the page it leads to has loaded; the URL asked for."""
    before = len(navigations)
    page.click(selector)
    page.wait_for_url(f"{prefix}**")
    page.wait_for_load_state()
    loads = [url for url in navigations[before:] if url.startswith(prefix)]
    assert loads, navigations[before:]
    return loads[-1]


def test_a_verified_visitors_click_on_a_help_center_link_signs_them_in_there(
    page: Page, hop: HelpCenterHop, agent, navigations
):
    _open_shop(page, hop)
    _verify(page, agent)
    verified = Contact.objects.get(agent=agent)
    # A link the page adds later counts too (one listener on the document), clicked on an
    # element inside it.
    page.evaluate(
        """url => document.body.insertAdjacentHTML("beforeend", `<p><a id="later"
            href="${url}?lang=fr#steps"><span>Reset your password</span></a></p>`)""",
        hop.article,
    )
    asked = _follow(page, "#later span", navigations, hop.article)
    query = _query(asked)
    assert query["lang"] == ["fr"]
    assert len(query["rapport_identity"]) == 1

    page.wait_for_function("() => window.Rapport")
    page.evaluate("() => Rapport.ready")
    contact = page.evaluate("() => Rapport.contact")
    assert contact == {"id": str(verified.pk), "name": "Mary Jackson", "identity": "verified"}
    assert "rapport_identity" not in page.url  # out of the address bar
    assert page.url.endswith("?lang=fr#steps")  # the rest of the link kept as it was
    help_visitor = page.evaluate("() => Rapport.visitorId")
    session = VisitorSession.objects.get(agent=agent, visitor_id=help_visitor)
    assert session.contact_id == verified.pk
    assert HandoffTokenUse.objects.count() == 1
    assert Contact.objects.filter(agent=agent).count() == 1


def test_only_a_verified_visitor_and_only_listed_hosts_get_the_token(
    page: Page, hop: HelpCenterHop, agent, navigations, token_calls
):
    # Anonymous: the link opens as it is, without asking Rapport for anything.
    _open_shop(page, hop)
    asked = _follow(page, "#help", navigations, hop.article)
    assert _query(asked) == {"lang": ["en"]}

    # Self-reported: still as it is.
    _open_shop(page, hop)
    typed = page.evaluate("() => Rapport.identify({ email: 'lead@example.com' })")
    assert typed["contact"]["identity"] == "self_reported"
    asked = _follow(page, "#help", navigations, hop.article)
    assert _query(asked) == {"lang": ["en"]}
    assert token_calls == []

    # Verified, but a host that is not listed: as it is.
    _open_shop(page, hop)
    _verify(page, agent)
    asked = _follow(page, "#elsewhere", navigations, hop.elsewhere)
    assert _query(asked) == {"lang": ["en"]}
    assert token_calls == []

    # Verified, a listed host: the token goes along.
    _open_shop(page, hop)
    asked = _follow(page, "#help", navigations, hop.article)
    assert _query(asked)["lang"] == ["en"]
    assert "rapport_identity" in _query(asked)
    assert len(token_calls) == 1


def test_the_link_still_opens_when_the_token_is_slow_or_refused(
    page: Page, hop: HelpCenterHop, agent, navigations, token_calls
):
    _open_shop(page, hop)
    _verify(page, agent)
    held: list[Route] = []
    page.route("**/identity-token", lambda route: held.append(route))  # never answered
    started = time.monotonic()
    asked = _follow(page, "#help", navigations, hop.article)
    waited = time.monotonic() - started
    assert len(token_calls) == 1  # it did ask…
    assert _query(asked) == {"lang": ["en"]}  # …and went on without the token
    assert 1.3 < waited < 10
    page.unroute("**/identity-token")

    _open_shop(page, hop)
    page.route(
        "**/identity-token",
        lambda route: route.fulfill(status=500, content_type="text/html", body="oops"),
    )
    started = time.monotonic()
    asked = _follow(page, "#help", navigations, hop.article)
    assert len(token_calls) == 2
    assert _query(asked) == {"lang": ["en"]}
    assert time.monotonic() - started < 1.3  # a refusal does not wait for the timeout


def test_a_new_tab_click_opens_the_carrying_link_in_a_new_tab(
    page: Page, hop: HelpCenterHop, agent, navigations
):
    _open_shop(page, hop)
    _verify(page, agent)
    verified = Contact.objects.get(agent=agent)

    for selector, modifiers in (("#help-tab", []), ("#help", ["ControlOrMeta"])):
        with page.context.expect_page() as opening:
            page.click(selector, modifiers=modifiers)
        tab = opening.value
        tab.wait_for_url(f"{hop.article}**")
        tab.wait_for_function("() => window.Rapport")
        tab.evaluate("() => Rapport.ready")
        assert tab.evaluate("() => Rapport.contact")["id"] == str(verified.pk)
        assert tab.evaluate("() => window.opener") is None
        tab.close()
        assert page.url == hop.shop_url  # the shop stays where it was

    asked = [url for url in navigations if url.startswith(hop.article)]
    assert [_query(url)["lang"] for url in asked] == [["de"], ["en"]]
    assert all("rapport_identity" in _query(url) for url in asked)
    assert HandoffTokenUse.objects.count() == 2


def test_the_page_keeps_a_link_it_handles_itself(
    page: Page, hop: HelpCenterHop, agent, token_calls
):
    _open_shop(page, hop)
    _verify(page, agent)
    page.evaluate(
        """() => document.getElementById("help").addEventListener("click", e => {
             e.preventDefault(); window.handled = true; })"""
    )
    page.click("#help")
    page.wait_for_function("() => window.handled === true")
    assert page.url == hop.shop_url
    assert token_calls == []
    # Rapport.linkWithIdentity, the way before data-help-center, still works alongside.
    link = page.evaluate("url => Rapport.linkWithIdentity(url)", hop.article)
    assert "rapport_identity=" in link
    assert len(token_calls) == 1


def test_the_demo_page_hops_to_its_help_center_and_fills_the_script_tag(
    page: Page, live_server, admin_user, agent, settings
):
    settings.WIDGET_DEMO_ENABLED = True
    _login(page, live_server, admin_user)
    demo = f"{live_server.url}/demo/widget/?agent={agent.public_id}"
    page.goto(demo)
    expect(page.locator("#demo")).to_have_attribute("data-ready", "true")
    expect(page.locator("#demo-tag")).to_contain_text('data-help-center="localhost:')

    # Typed details go on the script tag and identify the visitor on load.
    page.fill("#demo-email", "guest@example.com")
    page.fill("#demo-name", "Guest Visitor")
    page.click("#demo-self-tag")
    expect(page.locator("#demo-status")).to_have_text("self-reported")
    expect(page.locator("#demo-tag")).to_contain_text('data-user-email="guest@example.com"')
    guest = Contact.objects.get(agent=agent, email="guest@example.com")
    assert (guest.name, guest.identity) == ("Guest Visitor", "self_reported")

    # Signed in, the help-center link carries the identity (the demo is its own help center).
    page.select_option("#demo-user", "1001")
    page.click("#demo-jwt")
    expect(page.locator("#demo-status")).to_have_text("verified")
    with page.expect_request(lambda r: r.is_navigation_request()) as followed:
        page.click("#demo-help-article")
    assert "rapport_identity=" in followed.value.url
    expect(page.locator("#demo")).to_have_attribute("data-ready", "true")
    expect(page.locator("#demo-arrived")).to_be_visible()
    expect(page.locator("#demo-status")).to_have_text("verified")
    assert HandoffTokenUse.objects.count() == 1
