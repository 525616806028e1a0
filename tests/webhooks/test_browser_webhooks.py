"""End to end in Chromium, at desktop and at phone width: an admin opens Settings → Webhooks,
adds an endpoint for a receiver on this machine, copies its secret (shown once), sends a
test event and sees it delivered, then reads what was sent."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Browser, expect
from standardwebhooks import Webhook

from tests.browser import (
    DESKTOP,
    PHONE,
    htmx_settled,
    page_overflow,
    readme_shot,
    require_axe,
    serious_axe_violations,
    sign_in,
)
from tests.webhooks.receiver import Receiver, Reply
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _checked(page, name: str, problems: list[str]) -> None:
    if overflow := page_overflow(page):
        problems.append(f"{name}: the page scrolls sideways {overflow}")
    problems.extend(f"{name}: {v}" for v in serious_axe_violations(page))


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_an_admin_adds_an_endpoint_and_sends_it_a_test_event(
    live_server, browser: Browser, agent, admin_user, settings, viewport
):
    require_axe()
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the receiver listens on 127.0.0.1
    settings.WEBHOOK_REQUIRE_HTTPS = False
    base = live_server.url
    problems: list[str] = []
    width = viewport["width"]
    context = browser.new_context(
        viewport=viewport, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    with Receiver() as receiver:
        receiver.default = Reply(200, body=b'{"received": true}')
        sign_in(page, base, admin_user.username)
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="Settings").click()
        page.get_by_role("navigation", name="Settings").get_by_role("link", name="Webhooks").click()
        expect(page).to_have_url(f"{base}/a/{agent.public_id}/settings/webhooks/")
        expect(page.locator("#endpoints")).to_contain_text("No endpoints yet")
        _checked(page, f"webhooks, none yet {width}", problems)

        # A refused URL says why beside the field, and the cursor waits there.
        page.get_by_label("URL").fill("ftp://files.example.com/")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#id_url_error")).to_contain_text("Use an http:// or https:// URL.")
        expect(page.get_by_label("URL")).to_be_focused()
        _checked(page, f"webhooks, refused {width}", problems)

        page.get_by_label("URL").fill(receiver.url)
        page.get_by_label("Description").fill("Local receiver")
        page.get_by_label("All events").uncheck()
        page.get_by_label("contact.created").check()
        page.get_by_label("conversation.created").check()
        page.get_by_role("button", name="Add endpoint").click()

        notice = page.locator("#new-secret")
        expect(notice).to_contain_text("it will not be shown again")
        secret = notice.get_by_role("textbox", name="Signing secret").input_value()
        assert secret.startswith("whsec_")
        notice.get_by_role("button", name="Copy").click()
        expect(notice.get_by_role("button", name="Copied")).to_be_visible()
        assert page.evaluate("() => navigator.clipboard.readText()") == secret
        endpoint = WebhookEndpoint.objects.get()
        assert (endpoint.url, endpoint.description) == (receiver.url, "Local receiver")
        assert endpoint.events == ["contact.created", "conversation.created"]
        expect(page.locator("#deliveries")).to_contain_text("No deliveries yet")
        _checked(page, f"endpoint with its new secret {width}", problems)

        page.get_by_role("button", name="Send test event").click()
        deliveries = page.locator("#deliveries")
        expect(deliveries).to_contain_text("Test event delivered: the endpoint answered 200")
        htmx_settled(page)
        row = deliveries.locator("tbody tr").first
        expect(row).to_contain_text("webhook.test")
        expect(row).to_contain_text("Succeeded")
        expect(row).to_contain_text("200")
        (got,) = receiver.requests
        assert Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.test"
        assert WebhookDelivery.objects.get().status == "succeeded"
        _checked(page, f"endpoint after a test event {width}", problems)
        if viewport is DESKTOP:
            page.evaluate("() => window.scrollTo(0, 0)")
            readme_shot(page, "webhooks.png", full_page=True)

        # What was sent, and what came back.
        row.get_by_role("link", name="webhook.test").click()
        expect(page.locator("#request-body")).to_contain_text('"type": "webhook.test"')
        expect(page.locator("main")).to_contain_text('{"received": true}')
        _checked(page, f"delivery {width}", problems)

        # The secret was shown once: back on the endpoint's page, it is gone.
        page.get_by_role("link", name=receiver.url).click()
        expect(page.locator("#deliveries")).to_contain_text("webhook.test")
        expect(page.locator("#new-secret")).to_have_count(0)
        assert secret not in page.content()
    context.close()
    assert problems == [], "\n".join(problems)
