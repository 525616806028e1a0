"""The widget's chat panel in Chromium, on a customer page of another origin: the launcher, a
conversation with the inbox, history across pages, identity, sign-out, isolation from the
host page's CSS, a strict host Content-Security-Policy, and accessibility, at desktop width
and at 390 px."""

from __future__ import annotations

import os
import re
import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from contacts.models import Contact
from helpdesk.models import Conversation, Message
from helpdesk.services import staff_reply
from tests.browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    page_overflow,
    readme_shot,
    require_axe,
    serious_axe_violations,
)
from tests.identity.customer_site import POLL_MS, CustomerSite
from tests.identity.test_browser_widget import _sign

# Playwright's sync API runs an event loop in this thread; the ORM calls of the test are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])

# Everything a careless or hostile host stylesheet could throw at an embedded widget.
HOSTILE_CSS = """
* { color: #ff0000 !important; font-size: 2px !important; font-family: monospace !important;
    line-height: 0 !important; letter-spacing: 12px !important;
    text-transform: uppercase !important;
    background: #00ff00 !important; border: 7px dashed #ff00ff !important;
    box-sizing: content-box !important; padding: 30px !important; margin: 9px !important;
    text-align: right !important; visibility: visible !important; }
body * { display: none !important; }
button, textarea, input, ol, li, section, header, h2, div, form, label, span {
    display: inline !important; position: static !important; width: 3px !important;
    height: 3px !important; opacity: 0.1 !important; }
:root { --a: #ff0000; --af: #ff0000; color-scheme: dark; }
"""


@pytest.fixture
def site(live_server, agent):
    made = CustomerSite(live_server, agent.public_id)
    yield made
    made.close()


@pytest.fixture
def sized(page: Page, viewport) -> Page:
    page.set_viewport_size(viewport)
    return page


def launcher(page: Page):
    return page.locator("rapport-widget").locator("button.launcher")


def panel(page: Page):
    return page.locator("rapport-widget").locator("section.panel")


def message_field(page: Page):
    return panel(page).get_by_label("Message", exact=True)


def bubbles(page: Page):
    return panel(page).locator("li.msg")


def shadow_focus(page: Page) -> str | None:
    """What has focus inside the widget: the focused element's id, or its class."""
    return page.evaluate(
        """() => {
          const host = document.querySelector("rapport-widget");
          if (!host || document.activeElement !== host) return null;
          const el = host.shadowRoot.activeElement;
          return el ? (el.id || el.className) : null;
        }"""
    )


def open_panel(page: Page) -> None:
    launcher(page).click()
    expect(panel(page)).to_be_visible()
    expect(message_field(page)).to_be_focused()


def send(page: Page, text: str) -> None:
    message_field(page).fill(text)
    message_field(page).press("Enter")
    expect(bubbles(page).filter(has_text=text).last).to_be_visible()
    expect(panel(page).get_by_text("Sending…")).to_have_count(0, timeout=10_000)


def stored_state(page: Page, agent) -> dict:
    return page.evaluate(f"() => JSON.parse(localStorage.getItem('rapport:{agent.public_id}'))")


def sign_in(context, live_server, user):
    staff = context.new_page()
    staff.goto(f"{live_server.url}/login/")
    staff.fill("input[name=username]", user.username)
    staff.fill("input[name=password]", PASSWORD)
    staff.click("button[type=submit]")
    staff.wait_for_url(f"{live_server.url}/a/**")
    return staff


# --- A conversation ------------------------------------------------------------------------------


@WIDTHS
def test_a_visitor_chats_from_the_panel_and_a_reply_from_the_inbox_appears(
    sized: Page, site, agent, admin_user, live_server, browser, viewport
):
    page = sized
    page.goto(site.page("/shop/"))
    expect(launcher(page)).to_have_accessible_name("Open chat")
    expect(panel(page)).to_be_hidden()
    open_panel(page)
    expect(launcher(page)).to_have_attribute("aria-expanded", "true")
    box = panel(page).bounding_box()
    if viewport == PHONE:
        assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, PHONE["height"])
    else:
        assert box["width"] == 370
        assert box["x"] + box["width"] == DESKTOP["width"] - 20

    send(page, "Hello, where is my order?")
    conversation = Conversation.objects.get(agent=agent)
    assert list(conversation.messages.values_list("role", "body")) == [
        ("visitor", "Hello, where is my order?")
    ]
    assert conversation.contact.identity == "anonymous"
    assert stored_state(page, agent)["conversationId"] == str(conversation.pk)

    send(page, "It is order 1234.")
    assert list(conversation.messages.order_by("id").values_list("body", flat=True)) == [
        "Hello, where is my order?",
        "It is order 1234.",
    ]
    assert Conversation.objects.filter(agent=agent).count() == 1

    # Support answers in the inbox, in another browser; the visitor sees it without reloading.
    context = browser.new_context()
    staff = sign_in(context, live_server, admin_user)
    staff.goto(f"{live_server.url}/a/{agent.public_id}/inbox/{conversation.pk}/")
    expect(staff.locator("#identity-badge")).to_have_text("Anonymous")
    staff.fill("#reply textarea[name=body]", "It ships today. Anything else?")
    staff.click("#reply button[type=submit]")
    expect(staff.locator(".bubble-staff", has_text="It ships today")).to_have_count(1)
    context.close()
    reply = bubbles(page).filter(has_text="It ships today. Anything else?")
    expect(reply).to_be_visible(timeout=5_000)
    expect(reply).to_have_class("msg reply staff")
    expect(reply.locator(".sr")).to_have_text("Support: ")
    assert Message.objects.filter(conversation=conversation, role="staff").count() == 1
    expect(bubbles(page)).to_have_count(3)
    if viewport == PHONE:
        readme_shot(page, "widget-panel-phone.png")


@WIDTHS
def test_the_history_follows_the_visitor_across_reloads_and_pages(
    sized: Page, site, agent, viewport
):
    page = sized
    page.goto(site.page("/shop/"))
    open_panel(page)
    send(page, "First question")
    conversation = Conversation.objects.get(agent=agent)
    staff_reply(conversation=conversation, user=None, body="First answer")
    expect(bubbles(page).filter(has_text="First answer")).to_be_visible()

    page.reload()
    open_panel(page)
    expect(bubbles(page)).to_have_text(["You: First question", "Support: First answer"])

    # Another page of the same site: the same conversation, and a reply that came while the
    # panel was closed is counted on the launcher until it is opened.
    page.goto(site.page("/shop/cart"))
    expect(bubbles(page)).to_have_count(2)
    staff_reply(conversation=conversation, user=None, body="Your cart is saved.")
    expect(launcher(page).locator(".count")).to_have_text("1", timeout=10_000)
    expect(launcher(page)).to_have_accessible_name("Open chat (1 new)")
    open_panel(page)
    expect(bubbles(page).last).to_have_text("Support: Your cart is saved.")
    expect(launcher(page).locator(".count")).to_be_hidden()
    send(page, "Thanks!")
    assert Conversation.objects.filter(agent=agent).count() == 1
    assert conversation.messages.count() == 4


def test_a_hidden_tab_stops_asking_for_replies_and_catches_up_when_shown(page: Page, site, agent):
    page.goto(site.page("/shop/"))
    open_panel(page)
    send(page, "Are you there?")
    conversation = Conversation.objects.get(agent=agent)
    polls: list[str] = []
    page.on(
        "request",
        lambda request: (
            polls.append(request.url)
            if request.method == "GET" and "/messages" in request.url
            else None
        ),
    )

    def visibility(hidden: bool) -> None:
        page.evaluate(
            """hidden => {
                Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
                Object.defineProperty(document, "visibilityState", {
                    configurable: true, get: () => hidden ? "hidden" : "visible"});
                document.dispatchEvent(new Event("visibilitychange"));
            }""",
            hidden,
        )

    page.wait_for_timeout(POLL_MS * 4)
    assert len(polls) >= 2  # an open panel keeps asking

    visibility(True)
    page.wait_for_timeout(POLL_MS)  # a request already on its way may still land
    asked = len(polls)
    staff_reply(conversation=conversation, user=None, body="Here while you were away")
    page.wait_for_timeout(POLL_MS * 6)
    assert len(polls) == asked
    expect(bubbles(page)).to_have_count(1)

    visibility(False)
    expect(bubbles(page).last).to_have_text(
        "Support: Here while you were away", timeout=POLL_MS * 3
    )
    assert len(polls) > asked


@WIDTHS
def test_a_jwt_identify_verifies_the_visitor_and_the_inbox_shows_it(
    sized: Page, site, agent, admin_user, live_server, browser, viewport
):
    page = sized
    page.goto(site.page("/shop/"))
    open_panel(page)
    email = panel(page).get_by_label("Your email, so we can reply if you leave")
    expect(email).to_be_visible()
    send(page, "Can I change my plan?")
    conversation = Conversation.objects.get(agent=agent)

    token = _sign(agent, user_id="u-77", contact_attributes={"name": "Mary Jackson"})
    result = page.evaluate("token => Rapport.identify({ token })", token)
    assert result["contact"]["identity"] == "verified"
    contact = Contact.objects.get(agent=agent, external_id="u-77")
    assert (contact.identity, contact.name) == ("verified", "Mary Jackson")
    conversation.refresh_from_db()
    assert conversation.contact_id == contact.pk  # the anonymous chat came along
    # A verified visitor is not asked who they are, and keeps their conversation.
    expect(email).to_be_hidden()
    send(page, "I am signed in now.")
    expect(bubbles(page)).to_have_count(2)
    assert conversation.messages.count() == 2

    context = browser.new_context()
    staff = sign_in(context, live_server, admin_user)
    staff.goto(f"{live_server.url}/a/{agent.public_id}/inbox/{conversation.pk}/")
    expect(staff.locator("#identity-badge")).to_have_text("Verified")
    expect(staff.locator(".sidebar-name")).to_have_text("Mary Jackson")
    context.close()

    # Another person signs in on this browser without a sign-out: the panel shows nothing of
    # Mary's conversation.
    other = _sign(agent, user_id="u-78", contact_attributes={"name": "Dorothy Vaughan"})
    page.evaluate("token => Rapport.identify({ token })", other)
    expect(bubbles(page)).to_have_count(0)
    assert stored_state(page, agent).get("conversationId") is None


def test_an_anonymous_visitor_gives_their_email_in_the_panel(page: Page, site, agent):
    page.goto(site.page("/shop/"))
    open_panel(page)
    send(page, "Hi")
    email = panel(page).get_by_label("Your email, so we can reply if you leave")
    email.fill("not an email")
    panel(page).get_by_role("button", name="Save").click()
    expect(email).to_have_attribute("aria-invalid", "true")
    assert Contact.objects.get(agent=agent).email == ""

    email.fill("kate@example.com")
    panel(page).get_by_role("button", name="Save").click()
    expect(panel(page).get_by_text("Thanks, we will reply to kate@example.com.")).to_be_visible()
    expect(email).to_be_hidden()
    contact = Contact.objects.get(agent=agent)
    assert (contact.email, contact.identity) == ("kate@example.com", "self_reported")
    assert Conversation.objects.get(agent=agent).contact_id == contact.pk


@WIDTHS
def test_reset_empties_the_panel_and_forgets_the_session(sized: Page, site, agent, viewport):
    page = sized
    page.goto(site.page("/shop/"))
    open_panel(page)
    send(page, "Before sign-out")
    before = stored_state(page, agent)
    assert before["conversationId"]
    assert before["sessionToken"]

    page.evaluate("() => Rapport.reset()")
    expect(bubbles(page)).to_have_count(0)
    expect(
        panel(page).get_by_text("Send us a message and we will get back to you.")
    ).to_be_visible()
    after = stored_state(page, agent)
    assert "conversationId" not in after
    assert "sessionToken" not in after
    assert after["visitorId"] != before["visitorId"]

    page.reload()
    open_panel(page)
    expect(bubbles(page)).to_have_count(0)
    send(page, "After sign-out")
    first, second = Conversation.objects.filter(agent=agent).order_by("created_at")
    assert first.contact_id != second.contact_id
    assert list(second.messages.values_list("body", flat=True)) == ["After sign-out"]


# --- Keyboard and focus --------------------------------------------------------------------------


@WIDTHS
def test_focus_moves_into_the_panel_and_back_and_escape_closes_it(sized: Page, site, viewport):
    page = sized
    page.goto(site.page("/shop/"))
    launcher(page).focus()
    page.keyboard.press("Enter")
    expect(panel(page)).to_be_visible()
    assert shadow_focus(page) == "rapport-message"
    page.keyboard.press("Escape")
    expect(panel(page)).to_be_hidden()
    expect(launcher(page)).to_have_attribute("aria-expanded", "false")
    assert shadow_focus(page) == "launcher"

    # The close button does the same; so do Rapport.open() and Rapport.close().
    page.keyboard.press("Enter")
    panel(page).get_by_role("button", name="Close chat").click()
    expect(panel(page)).to_be_hidden()
    assert shadow_focus(page) == "launcher"
    assert page.evaluate("() => Rapport.open()") is True
    expect(panel(page)).to_be_visible()
    assert shadow_focus(page) == "rapport-message"
    assert page.evaluate("() => Rapport.isOpen") is True
    assert page.evaluate("() => Rapport.close()") is True
    expect(panel(page)).to_be_hidden()
    assert shadow_focus(page) == "launcher"


# --- Isolation from the host page ----------------------------------------------------------------

STYLE_PROBE = """() => {
  const root = document.querySelector("rapport-widget").shadowRoot;
  const props = ["color", "background-color", "font-size", "font-family", "line-height",
    "letter-spacing", "text-transform", "display", "position", "width", "height", "padding-top",
    "margin-top", "border-top-width", "border-top-style", "opacity", "box-sizing", "text-align",
    "visibility"];
  const out = {};
  for (const sel of [".launcher", ".panel", "h2", ".log", "li.msg", ".bubble", "textarea",
                     ".composer .btn", "input[type=email]", ".who label"]) {
    const el = root.querySelector(sel);
    const style = getComputedStyle(el);
    out[sel] = Object.fromEntries(props.map(p => [p, style.getPropertyValue(p)]));
  }
  return out;
}"""

HOST_PROBE = """() => {
  const props = ["color", "background-color", "font-size", "font-family", "margin-top",
    "display", "padding-top", "box-sizing", "line-height"];
  const out = {styleSheets: document.styleSheets.length,
               adopted: document.adoptedStyleSheets.length,
               styled: document.querySelectorAll("[style]").length,
               styleElements: document.querySelectorAll("style").length};
  for (const sel of ["html", "body", "main", "h1", "p", "#buy"]) {
    const style = getComputedStyle(document.querySelector(sel));
    out[sel] = Object.fromEntries(props.map(p => [p, style.getPropertyValue(p)]));
  }
  return out;
}"""


def test_the_host_pages_css_does_not_reach_the_panel(page: Page, site, agent):
    # The same panel, with one staff reply, on a plain page and on a hostile one.
    def panel_styles(url: str) -> dict:
        page.goto(url)
        open_panel(page)
        if not Conversation.objects.filter(agent=agent).exists():
            send(page, "Styles?")
            staff_reply(conversation=Conversation.objects.get(agent=agent), user=None, body="Ok")
        expect(bubbles(page)).to_have_count(2)
        page.mouse.move(0, 0)  # no hover
        return page.evaluate(STYLE_PROBE)

    plain = panel_styles(site.page("/plain"))
    hostile = panel_styles(site.page("/hostile", head=f"<style>{HOSTILE_CSS}</style>"))
    # The hostile sheet does apply on the host page itself (it is a real test)…
    assert page.evaluate("() => getComputedStyle(document.querySelector('h1')).display") == "none"
    assert page.evaluate("() => getComputedStyle(document.body).color") == "rgb(255, 0, 0)"
    # …and changes nothing inside the panel.
    for selector, styles in plain.items():
        assert hostile[selector] == styles, selector
    assert plain[".launcher"]["background-color"] == "rgb(29, 78, 216)"
    assert plain["textarea"]["font-size"] == "14px"
    expect(panel(page)).to_be_visible()


def test_the_widget_does_not_restyle_the_host_page(page: Page, site):
    page.goto(site.page("/without", widget=False))
    without = page.evaluate(HOST_PROBE)
    page.goto(site.page("/with"))
    open_panel(page)
    send(page, "Does the page change?")
    page.evaluate("() => Rapport.close()")
    with_widget = page.evaluate(HOST_PROBE)
    assert with_widget == without
    # The widget adds one element to the page, its host, and nothing else.
    added = page.evaluate(
        "() => [...document.body.children].filter(e => e.tagName !== 'MAIN')"
        ".map(e => e.tagName.toLowerCase())"
    )
    assert added == ["rapport-widget"]


@WIDTHS
def test_the_panel_works_on_a_host_page_with_a_strict_csp(
    sized: Page, site, agent, live_server, viewport
):
    page = sized
    csp = (
        f"default-src 'self'; script-src 'self' {live_server.url}; style-src 'self' "
        f"{live_server.url}; connect-src 'self' {live_server.url}; img-src 'self'; "
        "object-src 'none'; base-uri 'self'"
    )
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(site.page("/strict", headers={"Content-Security-Policy": csp}))
    open_panel(page)
    send(page, "Under a strict CSP")
    assert Message.objects.get(role="visitor").body == "Under a strict CSP"
    expect(launcher(page)).to_have_css("background-color", "rgb(29, 78, 216)")
    expect(panel(page).locator("header")).to_have_css("color", "rgb(255, 255, 255)")
    staff_reply(conversation=Conversation.objects.get(agent=agent), user=None, body="Seen")
    expect(bubbles(page).filter(has_text="Seen")).to_be_visible()
    violations = [line for line in console if "Content Security Policy" in line]
    assert violations == []
    assert errors == []

    # The policy is really enforced on this page: an inline style attribute is refused.
    page.evaluate("() => document.querySelector('h1').setAttribute('style', 'color: red')")
    expect(page.locator("h1")).not_to_have_css("color", "rgb(255, 0, 0)")
    page.wait_for_function("() => true")
    assert any("Content Security Policy" in line for line in console)


# --- Accessibility -------------------------------------------------------------------------------


@WIDTHS
def test_the_open_panel_passes_axe_and_never_scrolls_sideways(sized: Page, site, agent, viewport):
    require_axe()
    page = sized
    page.goto(site.page("/shop/"))
    expect(launcher(page)).to_be_visible()
    assert serious_axe_violations(page) == []
    open_panel(page)
    send(page, "Where can I read about returns?")
    staff_reply(
        conversation=Conversation.objects.get(agent=agent),
        user=None,
        body="See https://help.example.com/returns, or write back.",
    )
    expect(bubbles(page)).to_have_count(2)
    # An unsendable message shows its failed state with a retry button: checked too.
    page.context.set_offline(True)
    send_offline(page, "x" * 20)
    page.context.set_offline(False)
    log = panel(page).locator("ol.log")
    expect(log).to_have_attribute("aria-live", "polite")
    expect(panel(page)).to_have_attribute("role", "dialog")
    expect(panel(page)).to_have_accessible_name("Chat with us")
    assert serious_axe_violations(page) == []
    assert page_overflow(page) is None


def send_offline(page: Page, text: str) -> None:
    message_field(page).fill(text)
    message_field(page).press("Enter")
    expect(panel(page).locator("li.failed", has_text=text)).to_be_visible()


# --- Trouble: offline, rate limited --------------------------------------------------------------


def test_offline_messages_fail_clearly_and_send_on_retry(page: Page, site, agent):
    page.goto(site.page("/shop/"))
    open_panel(page)
    send(page, "Online first")
    page.context.set_offline(True)
    send_offline(page, "Sent while offline")
    failed = panel(page).locator("li.failed", has_text="Sent while offline")
    expect(failed.locator(".state")).to_contain_text("Not sent.")
    expect(panel(page).get_by_role("status")).to_have_text(
        "You are offline. Messages will send when you retry."
    )
    assert Message.objects.filter(body="Sent while offline").count() == 0

    page.context.set_offline(False)
    expect(panel(page).get_by_role("status")).to_be_hidden()
    failed.get_by_role("button", name="Retry").click()
    expect(panel(page).locator("li.failed")).to_have_count(0)
    expect(panel(page).locator("li.msg", has_text="Sent while offline")).not_to_have_class(
        "pending"
    )
    deadline = time.monotonic() + 5
    while not Message.objects.filter(body="Sent while offline").exists():
        assert time.monotonic() < deadline, "the retried message never arrived"
        time.sleep(0.05)
    conversation = Conversation.objects.get(agent=agent)
    assert list(conversation.messages.order_by("id").values_list("body", flat=True)) == [
        "Online first",
        "Sent while offline",
    ]


def test_a_rate_limited_visitor_is_told_when_to_try_again(page: Page, site, agent, settings):
    # One widget call a minute from this address: identify passes, the conversation does not.
    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "1/minute"
    page.goto(site.page("/shop/"))
    open_panel(page)
    message_field(page).fill("Am I too fast?")
    message_field(page).press("Enter")
    expect(panel(page).locator("li.failed", has_text="Am I too fast?")).to_be_visible()
    status = panel(page).get_by_role("status")
    expect(status).to_contain_text("Too many messages at once. Try again in")
    seconds = int(re.search(r"Try again in (\d+) s\.", status.inner_text()).group(1))
    assert 0 < seconds <= 60
    assert not Conversation.objects.filter(agent=agent).exists()


# --- Links and text ------------------------------------------------------------------------------


def test_replies_are_text_and_help_center_links_carry_a_verified_identity(page: Page, site, agent):
    help_host = urlsplit(site.origin).netloc
    shop = site.page("/shop/", attrs=f'data-help-center="{help_host}"')
    article = site.page("/help/article", attrs=f'data-help-center="{help_host}"')
    page.goto(shop)
    token = _sign(agent, user_id="u-9", contact_attributes={"name": "Annie Easley"})
    page.evaluate("token => Rapport.identify({ token })", token)
    open_panel(page)
    send(page, "How do I reset my password?")
    staff_reply(
        conversation=Conversation.objects.get(agent=agent),
        user=None,
        body=f'<img src=x onerror="window.pwned=1"> Read {article}?lang=en.',
    )
    reply = bubbles(page).filter(has_text="Read")
    expect(reply).to_contain_text('<img src=x onerror="window.pwned=1">')
    assert reply.locator("img").count() == 0
    assert page.evaluate("() => window.pwned") is None
    link = reply.get_by_role("link")
    expect(link).to_have_attribute("href", f"{article}?lang=en")  # the final dot is not in it
    expect(link).to_have_attribute("rel", "noopener noreferrer")

    with page.context.expect_page() as opened:
        link.click()
    help_page = opened.value
    help_page.wait_for_load_state()
    help_page.wait_for_function("() => window.Rapport")
    help_page.evaluate("() => Rapport.ready")
    assert help_page.evaluate("() => Rapport.contact")["name"] == "Annie Easley"
    assert help_page.evaluate("() => Rapport.contact")["identity"] == "verified"
    assert "lang=en" in help_page.url
    assert "rapport_identity" not in help_page.url


# --- Options of the script tag -------------------------------------------------------------------


def test_the_tag_chooses_side_colour_and_language(page: Page, site):
    page.goto(site.page("/fr", attrs='data-position="left" data-color="#FDE68A" data-locale="fr"'))
    expect(launcher(page)).to_have_accessible_name("Ouvrir le chat")
    expect(launcher(page)).to_have_css("background-color", "rgb(253, 230, 138)")
    # A light accent gets dark text, so the contrast holds.
    expect(launcher(page)).to_have_css("color", "rgb(17, 24, 39)")
    assert launcher(page).bounding_box()["x"] == 20
    open_panel(page)
    expect(panel(page)).to_have_accessible_name("Discutons")
    expect(panel(page).get_by_role("button", name="Envoyer")).to_be_visible()
    assert panel(page).bounding_box()["x"] == 20

    # A colour that is not a hex colour is refused: the default blue, and a warning.
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text))
    page.goto(site.page("/bad", attrs='data-color="red;}body{display:none"'))
    expect(launcher(page)).to_have_css("background-color", "rgb(29, 78, 216)")
    expect(launcher(page)).to_have_accessible_name("Open chat")
    assert any("data-color" in w for w in warnings)


def test_without_the_launcher_the_panel_opens_only_from_the_page(page: Page, site):
    page.goto(
        site.page(
            "/own-button",
            attrs='data-launcher="false"',
            body='<button type="button" id="help">Help</button>',
        )
    )
    page.wait_for_function("() => window.Rapport")
    assert page.locator("rapport-widget").count() == 0  # an API client only, until asked
    page.locator("#help").focus()
    assert page.evaluate("() => Rapport.open()") is True
    expect(panel(page)).to_be_visible()
    assert page.locator("rapport-widget").locator("button.launcher").count() == 0
    page.keyboard.press("Escape")
    expect(panel(page)).to_be_hidden()
    expect(page.locator("#help")).to_be_focused()


# --- The demo shop -------------------------------------------------------------------------------


def test_the_demo_shop_embeds_the_real_panel(page: Page, live_server, admin_user, agent, settings):
    settings.WIDGET_DEMO_ENABLED = True
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", admin_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/a/**")
    page.goto(f"{live_server.url}/demo/widget/?agent={agent.public_id}")
    expect(page.locator("#demo")).to_have_attribute("data-ready", "true")
    expect(page.get_by_role("heading", name="New this week")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("{#")  # no template comment shows
    page.select_option("#demo-user", "1001")
    page.click("#demo-jwt")
    expect(page.locator("#demo-status")).to_have_text("verified")
    open_panel(page)
    send(page, "Hello from the demo shop")
    conversation = Conversation.objects.get(agent=agent)
    assert (conversation.contact.external_id, conversation.contact.identity) == (
        "1001",
        "verified",
    )
    staff_reply(
        conversation=conversation,
        user=admin_user,
        body="Hi Ada! Your order ships today: https://help.example.com/shipping",
    )
    expect(bubbles(page).filter(has_text="Your order ships today")).to_be_visible()
    # A verified visitor is not asked for an email.
    expect(panel(page).locator("form.who")).to_be_hidden()
    message_field(page).blur()
    readme_shot(page, "widget-panel.png")
    page.click("#demo-reset")
    expect(bubbles(page)).to_have_count(0)
    expect(page.locator("#demo-status")).to_have_text("anonymous")
