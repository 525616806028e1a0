"""Settings → Webhooks: admins add, change, switch, rotate and delete endpoints, read their
delivery log, resend and send test events; staff and other workspaces change nothing."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape

import pytest
from django.test import Client
from django.utils import timezone
from standardwebhooks import Webhook

from tests.factories import AgentFactory
from tests.helpers import HX, agent_url
from tests.webhooks.receiver import Reply
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from webhooks.secrets import endpoint_signing_secrets
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db

SECRET = re.compile(r'id="webhook-secret"[^>]*value="(whsec_[^"]+)"')
HOOK = "https://hooks.example.com/rapport"


@pytest.fixture(autouse=True)
def _grace(settings):
    settings.WEBHOOK_ROTATION_GRACE_HOURS = 24


@pytest.fixture
def endpoint(agent, admin_user) -> WebhookEndpoint:
    made, _secret = endpoint_create(
        agent=agent, url=HOOK, events=["contact.created"], description="CRM sync", user=admin_user
    )
    return made


def list_url(agent) -> str:
    return agent_url("webhooks:endpoints", agent)


def endpoint_url(name: str, endpoint, agent=None, **kwargs) -> str:
    return agent_url(f"webhooks:{name}", agent or endpoint.agent, endpoint_id=endpoint.pk, **kwargs)


def delivery_url(name: str, delivery, endpoint=None, agent=None) -> str:
    endpoint = endpoint or delivery.endpoint
    return endpoint_url(name, endpoint, agent, delivery_id=delivery.pk)


def delivery(endpoint, *, status="succeeded", event="contact.created", at=None, **fields):
    """A delivery of a message of its own, as the relay leaves it."""
    at = at or timezone.now()
    body = json.dumps({"type": event, "timestamp": at.isoformat(), "data": {"id": "c1"}})
    message = WebhookMessage.objects.create(
        agent_id=endpoint.agent_id, event_type=event, body=body, created_at=at
    )
    attempted = status != "pending"
    values = {
        "attempts": 1 if attempted else 0,
        "response_status": 200 if status == "succeeded" else None,
        "latency_ms": 42 if attempted else None,
        "last_attempt_at": at if attempted else None,
        **fields,
    }
    return WebhookDelivery.objects.create(
        endpoint=endpoint, message=message, status=status, created_at=at, **values
    )


def field_errors(html: str, name: str) -> str:
    """The text of the error list beside a form field."""
    found = re.search(rf'<ul class="errorlist" id="id_{name}_error">(.*?)</ul>', html, re.S)
    return unescape(re.sub(r"<[^>]+>", " ", found.group(1))) if found else ""


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-delivery="([0-9a-f-]+)"', html)


def state(endpoint) -> tuple:
    endpoint.refresh_from_db()
    return (
        endpoint.url,
        endpoint.description,
        endpoint.events,
        endpoint.enabled,
        endpoint.secret_encrypted,
        endpoint.previous_secret_encrypted,
    )


# --- Adding an endpoint ------------------------------------------------------------------------


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(admin_client, admin_user, agent):
    response = admin_client.post(
        agent_url("webhooks:endpoint_create", agent),
        {
            "url": HOOK,
            "description": "  CRM   sync ",
            "events": ["contact.updated", "contact.created"],
        },
    )
    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 302
    assert response["Location"] == endpoint_url("endpoint", endpoint) + "#new-secret"
    assert (endpoint.agent_id, endpoint.url, endpoint.description) == (agent.pk, HOOK, "CRM sync")
    assert endpoint.events == ["contact.created", "contact.updated"]
    assert endpoint.enabled is True
    assert endpoint.created_by_id == admin_user.pk

    # The delivery log refreshing itself (a fragment) leaves the secret to the page.
    fragment = admin_client.get(
        endpoint_url("endpoint", endpoint), **HX, HTTP_HX_TARGET="deliveries"
    )
    assert "whsec_" not in fragment.content.decode()
    page = admin_client.get(response["Location"])
    html = page.content.decode()
    shown = SECRET.search(html).group(1)
    assert endpoint_signing_secrets(endpoint) == [shown]
    assert shown not in endpoint.secret_encrypted  # stored encrypted
    assert "it will not be shown again" in html
    assert 'data-copy="#webhook-secret"' in html
    assert "no-store" in page["Cache-Control"]

    again = admin_client.get(endpoint_url("endpoint", endpoint)).content.decode()
    assert shown not in again
    assert 'id="webhook-secret"' not in again
    assert "whsec_" not in admin_client.get(list_url(agent)).content.decode()


def test_the_list_shows_each_endpoint_with_its_events_and_state(admin_client, agent, endpoint):
    worker_off, _ = endpoint_create(agent=agent, url="https://b.example.com/x", events=["*"])
    WebhookEndpoint.objects.filter(pk=worker_off.pk).update(
        enabled=False,
        disabled_reason="Switched off on 2026-01-02 03:04 UTC: every delivery failed for 120 "
        "hours (last: The endpoint answered 500.)",
    )
    failing_since = timezone.now() - timedelta(hours=3)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=failing_since)
    delivery(endpoint, status="failed", response_status=500, error="The endpoint answered 500.")

    html = admin_client.get(list_url(agent)).content.decode()
    assert 'aria-current="page">Webhooks</a>' in html
    assert "2 of 20" in html
    first, second = html.split('class="webhook-item"')[1:]
    assert HOOK in first
    assert "CRM sync" in first
    assert '<span class="chip">contact.created</span>' in first
    assert "Failing since" in first
    assert "switched off" in first
    assert "Latest: <code>contact.created</code>" in first
    assert "Failed" in first
    assert "https://b.example.com/x" in second
    assert '<span class="chip">All events</span>' in second
    assert "Switched off</span>" in second
    assert "every delivery failed for 120 hours" in second
    assert "No deliveries yet." in second


def test_all_events_is_stored_as_the_wildcard(admin_client, agent):
    admin_client.post(
        agent_url("webhooks:endpoint_create", agent),
        {"url": HOOK, "events": ["*", "contact.created"]},
    )
    assert WebhookEndpoint.objects.get().events == ["*"]


def test_an_invalid_url_is_shown_beside_its_field_and_creates_nothing(admin_client, agent):
    response = admin_client.post(
        agent_url("webhooks:endpoint_create", agent),
        {"url": "ftp://files.example.com/drop", "description": "Files"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert field_errors(html, "url").strip() == "Use an http:// or https:// URL."
    assert "List the events to send" in field_errors(html, "events")
    assert field_errors(html, "description") == ""
    # What was typed stays in the form, to fix.
    assert 'value="ftp://files.example.com/drop"' in html
    assert 'value="Files"' in html
    assert not WebhookEndpoint.objects.exists()


def test_a_description_too_long_is_refused_beside_its_field(admin_client, agent):
    response = admin_client.post(
        agent_url("webhooks:endpoint_create", agent),
        {"url": HOOK, "description": "x" * 300, "events": ["*"]},
    )
    assert response.status_code == 400
    assert "at most 255 characters" in field_errors(response.content.decode(), "description")
    assert not WebhookEndpoint.objects.exists()


def test_the_endpoint_limit_is_said_above_the_form(admin_client, agent, endpoint, settings):
    settings.WEBHOOK_MAX_ENDPOINTS = 1
    assert "the most it may have" in admin_client.get(list_url(agent)).content.decode()
    response = admin_client.post(
        agent_url("webhooks:endpoint_create", agent), {"url": HOOK, "events": ["*"]}
    )
    assert response.status_code == 409
    assert 'class="form-errors" role="alert"' in response.content.decode()
    assert "remove one first" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 1


# --- Who may do what ----------------------------------------------------------------------------


def _every_post(endpoint, sent) -> list[tuple[str, dict]]:
    return [
        (agent_url("webhooks:endpoint_create", endpoint.agent), {"url": HOOK, "events": ["*"]}),
        (endpoint_url("endpoint_update", endpoint), {"url": "https://x.test/", "events": ["*"]}),
        (endpoint_url("endpoint_enabled", endpoint), {"enabled": "off"}),
        (endpoint_url("endpoint_rotate", endpoint), {}),
        (endpoint_url("endpoint_delete", endpoint), {"confirm": "yes"}),
        (endpoint_url("endpoint_test", endpoint), {}),
        (delivery_url("delivery_resend", sent), {}),
    ]  # fmt: skip


def test_staff_are_refused_every_page_and_change_nothing(staff_client, agent, endpoint):
    sent = delivery(endpoint)
    before = state(endpoint)
    for url in (
        list_url(agent),
        endpoint_url("endpoint", endpoint),
        delivery_url("delivery", sent),
    ):
        assert staff_client.get(url).status_code == 403, url
    assert staff_client.get(endpoint_url("endpoint_delete", endpoint)).status_code == 403
    for url, data in _every_post(endpoint, sent):
        response = staff_client.post(url, data)
        assert response.status_code == 403, url
        assert "admin" in response.content.decode()
    assert state(endpoint) == before
    assert WebhookEndpoint.objects.count() == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [sent.pk]
    # Nor is the tab offered to them.
    members = staff_client.get(agent_url("workspaces:members", agent)).content.decode()
    assert "Webhooks" not in members


def test_another_agents_endpoint_and_delivery_are_404(admin_client, agent, endpoint, other_agent):
    theirs, _ = endpoint_create(agent=other_agent, url=HOOK, events=["*"])
    their_delivery = delivery(theirs)
    before, ours_before = state(theirs), state(endpoint)
    # Their ids under our agent's URLs.
    for url in (
        endpoint_url("endpoint", theirs, agent),
        endpoint_url("endpoint_delete", theirs, agent),
    ):
        assert admin_client.get(url).status_code == 404, url
    assert (
        admin_client.get(delivery_url("delivery", their_delivery, theirs, agent)).status_code == 404
    )
    # Their delivery under our endpoint.
    assert admin_client.get(delivery_url("delivery", their_delivery, endpoint)).status_code == 404
    for url, data in _every_post(theirs, their_delivery)[1:]:
        ours = url.replace(other_agent.public_id, agent.public_id)
        assert admin_client.post(ours, data).status_code == 404, ours
    assert (
        admin_client.post(delivery_url("delivery_resend", their_delivery, endpoint)).status_code
        == 404
    )
    # Another agent of our own workspace keeps its endpoints to itself too.
    sibling = AgentFactory(workspace=agent.workspace, name="Sales")
    assert admin_client.get(endpoint_url("endpoint", endpoint, sibling)).status_code == 404
    assert admin_client.post(endpoint_url("endpoint_rotate", endpoint, sibling)).status_code == 404
    # Their agent's pages altogether.
    assert admin_client.get(list_url(other_agent)).status_code == 404
    assert admin_client.post(endpoint_url("endpoint_rotate", theirs)).status_code == 404
    assert state(theirs) == before
    assert state(endpoint) == ours_before
    assert WebhookDelivery.objects.filter(endpoint=theirs).count() == 1
    assert WebhookEndpoint.objects.count() == 2


def test_a_post_without_the_csrf_token_is_refused(admin_user, agent, endpoint):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    before = state(endpoint)
    for url, data in (
        (agent_url("webhooks:endpoint_create", agent), {"url": HOOK, "events": ["*"]}),
        (endpoint_url("endpoint_rotate", endpoint), {}),
        (endpoint_url("endpoint_delete", endpoint), {"confirm": "yes"}),
    ):
        assert client.post(url, data).status_code == 403, url
    assert state(endpoint) == before
    assert WebhookEndpoint.objects.count() == 1
    # Every form of the pages carries the token.
    for url in (list_url(agent), endpoint_url("endpoint", endpoint)):
        html = client.get(url).content.decode()
        forms = re.findall(r'<form method="post".*?</form>', html, re.S)
        assert forms
        assert all("csrfmiddlewaretoken" in form for form in forms)


# --- Changing an endpoint ------------------------------------------------------------------------


def test_an_admin_changes_the_url_description_and_events(admin_client, endpoint):
    page = admin_client.get(endpoint_url("endpoint", endpoint)).content.decode()
    assert 'value="CRM sync"' in page
    assert re.search(
        r'<input type="checkbox" name="events" value="contact.created"[^>]*checked', page
    )
    response = admin_client.post(
        endpoint_url("endpoint_update", endpoint),
        {
            "url": "https://new.example.com/in",
            "description": "Billing",
            "events": ["contact.deleted", "contact.erased"],
        },
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description) == ("https://new.example.com/in", "Billing")
    assert endpoint.events == ["contact.deleted", "contact.erased"]
    assert "Endpoint saved" in admin_client.get(response["Location"]).content.decode()


def test_a_refused_change_shows_why_and_changes_nothing(admin_client, endpoint):
    before = state(endpoint)
    response = admin_client.post(
        endpoint_url("endpoint_update", endpoint),
        {"url": "https://user:pw@hooks.example.com/", "description": "x", "events": ["*"]},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Leave credentials out of the URL" in field_errors(html, "url")
    # The page's header shows what is stored; the form, what was sent.
    assert f'id="endpoint-url">{HOOK}</p>' in html
    assert 'value="https://user:pw@hooks.example.com/"' in html
    assert state(endpoint) == before


def test_switching_off_and_on(admin_client, endpoint):
    response = admin_client.post(endpoint_url("endpoint_enabled", endpoint), {"enabled": "off"})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert endpoint.disabled_at is not None
    page = admin_client.get(response["Location"]).content.decode()
    assert "Endpoint switched off" in page
    assert '<span class="badge badge-closed">Off</span>' in page
    assert ">Switch on</button>" in page

    admin_client.post(endpoint_url("endpoint_enabled", endpoint), {"enabled": "on"})
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_at) == (True, None)
    assert (
        ">Switch off</button>"
        in admin_client.get(endpoint_url("endpoint", endpoint)).content.decode()
    )


def test_an_endpoint_the_worker_switched_off_says_why_until_switched_on(admin_client, endpoint):
    reason = (
        "Switched off on 2026-01-02 03:04 UTC: every delivery failed for 120 hours "
        "(last: No answer within 5 s.)"
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_reason=reason, failing_since=timezone.now() - timedelta(days=6)
    )
    page = admin_client.get(endpoint_url("endpoint", endpoint)).content.decode()
    assert "Not receiving events." in page
    assert reason in page
    assert '<span class="badge badge-deleted">Switched off</span>' in page
    admin_client.post(endpoint_url("endpoint_enabled", endpoint), {"enabled": "on"})
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since) == (True, "", None)
    assert reason not in admin_client.get(endpoint_url("endpoint", endpoint)).content.decode()


def test_a_failing_endpoint_warns_when_it_will_be_switched_off(admin_client, endpoint, settings):
    settings.WEBHOOK_DISABLE_AFTER_HOURS = 48
    since = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=since)
    page = admin_client.get(endpoint_url("endpoint", endpoint)).content.decode()
    local = timezone.localtime(since + timedelta(hours=48))
    assert "Failing since" in page
    assert f"Unless one does by {local:%-d %b %Y, %H:%M} (48 hours after the first failure)" in page


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_one_signing(admin_client, endpoint):
    old_encrypted = endpoint.secret_encrypted
    (old,) = endpoint_signing_secrets(endpoint)
    response = admin_client.post(endpoint_url("endpoint_rotate", endpoint))
    assert response.status_code == 302
    assert response["Location"].endswith("#new-secret")
    endpoint.refresh_from_db()
    assert endpoint.previous_secret_encrypted == old_encrypted
    expected_end = timezone.now() + timedelta(hours=24)
    assert abs((endpoint.previous_secret_expires_at - expected_end).total_seconds()) < 60

    page = admin_client.get(response["Location"])
    html = page.content.decode()
    new = SECRET.search(html).group(1)
    assert new != old
    assert endpoint_signing_secrets(endpoint) == [new, old]
    assert "New signing secret" in html
    assert "The previous secret keeps signing beside it for 24 hours" in html
    assert "it will not be shown again" in html
    assert "no-store" in page["Cache-Control"]
    again = admin_client.get(endpoint_url("endpoint", endpoint)).content.decode()
    assert new not in again
    assert old not in again
    assert "The previous secret also signs until" in again


def test_deleting_asks_first_then_removes_the_endpoint_and_its_log(admin_client, agent, endpoint):
    delivery(endpoint)
    delivery(endpoint, status="pending")
    confirm = admin_client.get(endpoint_url("endpoint_delete", endpoint))
    html = confirm.content.decode()
    assert "Delete this endpoint?" in html
    assert "(2 deliveries)" in html
    assert "1 delivery is still waiting and will never be sent" in html
    # A POST without the confirmation only asks.
    assert admin_client.post(endpoint_url("endpoint_delete", endpoint)).status_code == 200
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()

    response = admin_client.post(endpoint_url("endpoint_delete", endpoint), {"confirm": "yes"})
    assert response.status_code == 302
    assert response["Location"] == list_url(agent)
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert f"Endpoint {HOOK} deleted" in admin_client.get(list_url(agent)).content.decode()
    assert admin_client.get(endpoint_url("endpoint", endpoint)).status_code == 404


# --- Deliveries ----------------------------------------------------------------------------------


def test_the_log_shows_each_delivery_newest_first(admin_client, endpoint):
    now = timezone.now()
    old = delivery(endpoint, at=now - timedelta(hours=2), response_status=200, latency_ms=1234)
    failed = delivery(
        endpoint,
        status="failed",
        event="contact.deleted",
        at=now - timedelta(hours=1),
        response_status=410,
        error="The endpoint answered 410.",
    )
    waiting = delivery(
        endpoint,
        status="pending",
        event="contact.updated",
        at=now,
        attempts=2,
        error="No answer within 5 s.",
        next_attempt_at=now + timedelta(hours=2),
    )
    html = admin_client.get(endpoint_url("endpoint", endpoint)).content.decode()
    assert row_ids(html) == [str(waiting.pk), str(failed.pk), str(old.pk)]
    rows = dict(zip(row_ids(html), html.split("<tr data-delivery=")[1:], strict=True))
    assert "Pending" in rows[str(waiting.pk)]
    assert "next attempt" in rows[str(waiting.pk)]
    assert "from now" in rows[str(waiting.pk)]
    assert "No answer within 5 s." in rows[str(waiting.pk)]
    assert "Failed" in rows[str(failed.pk)]
    assert "410" in rows[str(failed.pk)]
    assert "Succeeded" in rows[str(old.pk)]
    assert "1,234 ms" in rows[str(old.pk)]
    # Nothing is due soon: the log does not refresh itself.
    assert "hx-trigger" not in html.split('id="deliveries"')[1].split(">")[0]


def test_a_delivery_due_soon_makes_the_log_refresh_itself(admin_client, endpoint):
    delivery(endpoint, status="pending")
    html = admin_client.get(endpoint_url("endpoint", endpoint)).content.decode()
    section = html.split('id="deliveries"')[1].split(">")[0]
    assert 'hx-trigger="every 3s"' in section
    fragment = admin_client.get(
        endpoint_url("endpoint", endpoint), **HX, HTTP_HX_TARGET="deliveries"
    ).content.decode()
    assert fragment.strip().startswith('<section class="card" id="deliveries"')
    assert "<html" not in fragment
    assert "due now" in fragment


def test_the_log_pages_by_time_with_an_older_link(admin_client, endpoint):
    now = timezone.now()
    made = [delivery(endpoint, at=now - timedelta(minutes=i)) for i in range(53)]
    # Two at the same instant: the id breaks the tie.
    made.append(delivery(endpoint, at=made[-1].created_at))
    newest_first = sorted(made, key=lambda d: (d.created_at, d.pk), reverse=True)
    first = admin_client.get(endpoint_url("endpoint", endpoint)).content.decode()
    assert row_ids(first) == [str(d.pk) for d in newest_first[:50]]
    older = re.search(r'href="([^"]+\?before=[^"#]+)#deliveries">Older</a>', first).group(1)
    second = admin_client.get(unescape(older)).content.decode()
    assert row_ids(second) == [str(d.pk) for d in newest_first[50:]]
    assert ">Newest</a>" in second
    assert ">Older</a>" not in second
    # A cursor that is not ours starts again from the newest, and says so.
    bad = admin_client.get(endpoint_url("endpoint", endpoint), {"before": "nonsense"})
    assert bad.status_code == 200
    assert "The cursor is not valid" in bad.content.decode()
    assert row_ids(bad.content.decode()) == row_ids(first)


def test_a_delivery_page_shows_the_request_and_the_response(admin_client, endpoint):
    sent = delivery(
        endpoint,
        status="failed",
        response_status=422,
        response_body='{"error": "<unknown contact>"}',
        error="The endpoint answered 422.",
    )
    page = admin_client.get(delivery_url("delivery", sent))
    html = page.content.decode()
    body = json.loads(sent.message.body)
    assert f"<code>{json.dumps(body, indent=2).replace(chr(34), '&quot;')}</code>" in html
    assert "&lt;unknown contact&gt;" in html
    assert "<unknown contact>" not in html
    assert sent.message.webhook_id in html
    assert "The endpoint answered 422." in html
    assert ">Resend</button>" in html


def test_resend_queues_a_new_delivery_of_the_same_message(admin_client, endpoint):
    failed = delivery(endpoint, status="failed", response_status=400)
    response = admin_client.post(delivery_url("delivery_resend", failed))
    assert response.status_code == 302
    assert response["Location"] == endpoint_url("endpoint", endpoint) + "#deliveries"
    again = WebhookDelivery.objects.exclude(pk=failed.pk).get()
    assert (again.endpoint_id, again.message_id) == (endpoint.pk, failed.message_id)
    assert (again.status, again.attempts) == ("pending", 0)
    failed.refresh_from_db()
    assert failed.status == "failed"  # the log keeps what happened
    page = admin_client.get(response["Location"]).content.decode()
    assert "contact.created queued again with the same webhook-id" in page
    assert row_ids(page) == [str(again.pk), str(failed.pk)]


def test_resend_from_the_log_swaps_the_log_in_place(admin_client, endpoint):
    sent = delivery(endpoint)
    response = admin_client.post(
        delivery_url("delivery_resend", sent), **HX, HTTP_HX_TARGET="deliveries"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith('<section class="card" id="deliveries"')
    assert "queued again" in html
    assert len(row_ids(html)) == 2
    assert WebhookDelivery.objects.filter(message_id=sent.message_id).count() == 2


def test_a_test_event_reaches_a_local_receiver_and_shows_its_outcome(admin_client, agent, receiver):
    receiver.default = Reply(200, body=b'{"ok": true}')
    created = admin_client.post(
        agent_url("webhooks:endpoint_create", agent), {"url": receiver.url, "events": ["*"]}
    )
    endpoint = WebhookEndpoint.objects.get()
    secret = SECRET.search(admin_client.get(created["Location"]).content.decode()).group(1)

    response = admin_client.post(endpoint_url("endpoint_test", endpoint))
    assert response.status_code == 302
    sent = WebhookDelivery.objects.select_related("message").get()
    assert (sent.status, sent.attempts, sent.response_status) == ("succeeded", 1, 200)
    assert sent.message.event_type == "webhook.test"
    (got,) = receiver.requests
    assert got.headers["webhook-id"] == sent.message.webhook_id
    assert Webhook(secret).verify(got.body, got.headers)["data"]["endpoint"]["id"] == str(
        endpoint.pk
    )

    html = admin_client.get(response["Location"]).content.decode()
    assert "Test event delivered: the endpoint answered 200 in" in html
    row = html.split(f'<tr data-delivery="{sent.pk}"')[1].split("</tr>")[0]
    assert "webhook.test" in row
    assert "Succeeded" in row
    assert ">200<" in row

    detail = admin_client.get(delivery_url("delivery", sent)).content.decode()
    assert "&quot;type&quot;: &quot;webhook.test&quot;" in detail
    assert "{&quot;ok&quot;: true}" in detail


def test_a_failed_test_event_says_why_in_the_swapped_log(admin_client, endpoint, receiver):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=receiver.url)
    endpoint.refresh_from_db()
    receiver.then(Reply(503, body=b"maintenance"))
    response = admin_client.post(
        endpoint_url("endpoint_test", endpoint), **HX, HTTP_HX_TARGET="deliveries"
    )
    html = response.content.decode()
    assert html.strip().startswith('<section class="card" id="deliveries"')
    assert "The test event failed: The endpoint answered 503. It is tried again at" in html
    assert 'class="flash flash-error webhook-result"' in html
    sent = WebhookDelivery.objects.get()
    assert (sent.status, sent.attempts, sent.response_status) == ("pending", 1, 503)


def test_a_test_event_to_an_endpoint_that_is_off_waits(admin_client, endpoint, receiver):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=receiver.url, enabled=False)
    response = admin_client.post(endpoint_url("endpoint_test", endpoint), follow=True)
    assert "the test event waits until you switch it on" in response.content.decode()
    assert receiver.requests == []
    assert WebhookDelivery.objects.get().status == "pending"


# --- Queries -------------------------------------------------------------------------------------


def test_the_pages_read_a_fixed_number_of_queries(admin_client, agent, django_assert_num_queries):
    def fill(endpoints: int, deliveries: int) -> None:
        for i in range(endpoints):
            made, _ = endpoint_create(agent=agent, url=f"https://h{i}.example.com/", events=["*"])
            for j in range(deliveries):
                delivery(made, status=("succeeded", "failed", "pending")[j % 3])

    fill(2, 2)
    admin_client.get(list_url(agent))  # warm the session
    # session, user, agent, membership, endpoints (with their latest delivery and pending
    # count), the agent switcher
    with django_assert_num_queries(6) as few:
        assert admin_client.get(list_url(agent)).status_code == 200
    first = WebhookEndpoint.objects.order_by("created_at", "id").first()
    first_url = endpoint_url("endpoint", first)
    # session, user, agent, membership, the endpoint, its deliveries with their events,
    # the agent switcher
    with django_assert_num_queries(7) as few_deliveries:
        admin_client.get(first_url)

    fill(6, 5)
    for extra in range(20):
        delivery(first, status="failed" if extra % 2 else "succeeded")
    with django_assert_num_queries(len(few.captured_queries)):
        html = admin_client.get(list_url(agent)).content.decode()
    assert html.count('class="webhook-item"') == 8
    with django_assert_num_queries(len(few_deliveries.captured_queries)):
        page = admin_client.get(first_url).content.decode()
    assert len(row_ids(page)) == 22
