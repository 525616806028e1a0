"""Delivering the outbox: signatures, retries and backoff, ordering per contact, a worker
killed mid-delivery, the switch-off rule, and the transport's refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from standardwebhooks import Webhook, WebhookVerificationError

from contacts.models import Contact
from contacts.services import contact_create, contact_update
from core.actors import Actor
from tests.webhooks.receiver import Reply
from webhooks import relay, services
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from webhooks.transport import RESPONSE_LIMIT

pytestmark = pytest.mark.django_db
ACTOR = Actor.importer("relay tests")
PENDING, SUCCEEDED, FAILED = (
    WebhookDelivery.Status.PENDING,
    WebhookDelivery.Status.SUCCEEDED,
    WebhookDelivery.Status.FAILED,
)


@pytest.fixture(autouse=True)
def _short_timeout(settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0


@pytest.fixture
def endpoint(agent, receiver):
    endpoint, secret = services.endpoint_create(agent=agent, url=receiver.url, events=["*"])
    endpoint.test_secret = secret
    return endpoint


def make_contact(agent, **fields) -> Contact:
    return contact_create(agent=agent, actor=ACTOR, data={"name": "Ada", **fields}).contact


def rename(contact: Contact, name: str) -> None:
    contact_update(contact=contact, actor=ACTOR, data={"name": name})


def make_due() -> None:
    """Skip the wait: every pending delivery is due now (as when its time has come)."""
    WebhookDelivery.objects.filter(status=PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def only_delivery() -> WebhookDelivery:
    (delivery,) = WebhookDelivery.objects.all()
    return delivery


# --- Signatures -----------------------------------------------------------------------------


def test_a_delivery_verifies_with_the_standardwebhooks_package_and_by_hand(
    agent, endpoint, receiver
):
    contact = make_contact(agent, email="ada@example.com")
    sample = ("rapport_webhook_deliveries_total", {"outcome": "succeeded"})
    before = REGISTRY.get_sample_value(*sample) or 0
    assert relay.deliver_due() == 1
    assert REGISTRY.get_sample_value(*sample) == before + 1  # /metrics counts it
    (got,) = receiver.requests
    message = WebhookMessage.objects.get()
    assert got.headers["webhook-id"] == message.webhook_id == got.json["id"]
    assert got.headers["content-type"] == "application/json"
    payload = Webhook(endpoint.test_secret).verify(got.body, got.headers)
    assert payload["type"] == "contact.created"
    assert payload["data"]["contact"]["id"] == str(contact.pk)

    # By hand: HMAC-SHA256 over "{id}.{timestamp}.{body}" with the base64 key after whsec_.
    key = base64.b64decode(endpoint.test_secret.removeprefix("whsec_"))
    signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert got.headers["webhook-signature"] == f"v1,{expected}"

    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.test_secret).verify(got.body.replace(b"Ada", b"Eve"), got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(services.endpoint_rotate_secret(endpoint)).verify(got.body, got.headers)
    assert only_delivery().status == SUCCEEDED


def test_a_rotated_secret_signs_beside_the_new_one_until_its_grace_ends(agent, endpoint, receiver):
    old = endpoint.test_secret
    new = services.endpoint_rotate_secret(endpoint)
    make_contact(agent)
    relay.deliver_due()
    got = receiver.requests[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(got.body, got.headers)["type"] == "contact.created"

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    rename(Contact.objects.get(), "Grace")
    relay.deliver_due()
    got = receiver.requests[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new).verify(got.body, got.headers)["type"] == "contact.updated"
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(got.body, got.headers)


def test_the_secret_is_stored_encrypted_and_never_in_a_delivery(agent, endpoint, receiver):
    stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert endpoint.test_secret.startswith("whsec_")
    assert endpoint.test_secret not in stored.secret_encrypted
    make_contact(agent)
    relay.deliver_due()
    got = receiver.requests[0]
    assert endpoint.test_secret not in got.body.decode()
    assert endpoint.test_secret not in str(got.headers)


# --- Retries --------------------------------------------------------------------------------


def test_a_failing_receiver_is_retried_with_backoff_until_it_succeeds(agent, endpoint, receiver):
    receiver.then(Reply(500, body=b"boom"), Reply(503), Reply(204))
    make_contact(agent)

    before = timezone.now()
    assert relay.deliver_due() == 1
    delivery = only_delivery()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (PENDING, 1, 500)
    assert delivery.response_body == "boom"
    assert delivery.error == "The endpoint answered 500."
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 5 * 0.8 - 1 <= wait <= 5 * 1.2 + 1
    assert relay.deliver_due() == 0  # not yet due
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is not None

    make_due()
    before = timezone.now()
    relay.deliver_due()
    delivery = only_delivery()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (PENDING, 2, 503)
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 300 * 0.8 - 1 <= wait <= 300 * 1.2 + 1

    make_due()
    relay.deliver_due()
    delivery = only_delivery()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (SUCCEEDED, 3, 204)
    assert delivery.error == ""
    assert delivery.latency_ms is not None
    # Three requests, one message: the same webhook-id each time, handled once.
    assert len(receiver.requests) == 3
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len(receiver.handled) == 1
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is None


def test_the_schedule_spans_about_a_day_and_then_the_delivery_fails(agent, endpoint, receiver):
    receiver.default = Reply(502)
    make_contact(agent)
    for attempt in range(1, relay.MAX_ATTEMPTS + 1):
        make_due()
        relay.deliver_due()
        assert only_delivery().attempts == attempt
    delivery = only_delivery()
    assert delivery.status == FAILED
    assert len(receiver.requests) == relay.MAX_ATTEMPTS == 8
    assert 20 * 3600 <= sum(relay.RETRY_SCHEDULE) <= 30 * 3600
    make_due()
    assert relay.deliver_due() == 0


@pytest.mark.parametrize(
    ("reply", "retried"),
    [
        (Reply(429, headers={"Retry-After": "120"}), True),
        (Reply(408), True),
        (Reply(500), True),
        (Reply(400), False),
        (Reply(401), False),
        (Reply(410), False),
    ],
)
def test_which_answers_are_retried(agent, endpoint, receiver, reply, retried):
    receiver.then(reply)
    make_contact(agent)
    relay.deliver_due()
    delivery = only_delivery()
    assert delivery.response_status == reply.status
    assert delivery.status == (PENDING if retried else FAILED)


def test_retry_after_is_honoured(agent, endpoint, receiver):
    receiver.then(Reply(429, headers={"Retry-After": "600"}))
    make_contact(agent)
    before = timezone.now()
    relay.deliver_due()
    # The schedule says about 5 s; the receiver asked for 10 minutes.
    assert (only_delivery().next_attempt_at - before).total_seconds() >= 599


def test_a_timeout_is_retried(agent, endpoint, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.then(Reply(204, delay=1.5))
    make_contact(agent)
    relay.deliver_due()
    delivery = only_delivery()
    assert delivery.status == PENDING
    assert delivery.response_status is None
    assert delivery.error == "No answer within 0.5 s."


def test_a_connection_refused_is_retried(agent, receiver):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    services.endpoint_create(agent=agent, url=f"http://127.0.0.1:{port}/x", events=["*"])
    make_contact(agent)
    relay.deliver_due()
    delivery = only_delivery()
    assert delivery.status == PENDING
    assert delivery.error.startswith("Connection failed")


def test_redirects_are_not_followed(agent, endpoint, receiver):
    receiver.then(Reply(301, headers={"Location": receiver.url + "/elsewhere"}))
    make_contact(agent)
    relay.deliver_due()
    delivery = only_delivery()
    assert (delivery.status, delivery.response_status) == (FAILED, 301)
    assert "Redirects are not followed" in delivery.error
    assert [r.path for r in receiver.requests] == ["/hooks"]


def test_the_response_body_is_kept_truncated(agent, endpoint, receiver):
    receiver.then(Reply(500, body=b"x" * 100_000))
    make_contact(agent)
    relay.deliver_due()
    assert only_delivery().response_body == "x" * RESPONSE_LIMIT


# --- Ordering -------------------------------------------------------------------------------


def test_a_contacts_events_arrive_in_order_and_a_retry_holds_back_only_that_contact(
    agent, endpoint, receiver
):
    receiver.then(Reply(500))
    ada = make_contact(agent, email="ada@example.com")
    rename(ada, "Ada L.")
    rename(ada, "Ada Lovelace")
    relay.deliver_due()  # created fails: the two updates wait behind it
    assert receiver.types() == ["contact.created"]

    grace = make_contact(agent, email="grace@example.com")
    relay.deliver_due()  # another contact is not held back
    assert receiver.requests[-1].json["data"]["contact"]["id"] == str(grace.pk)

    make_due()
    while relay.deliver_due():
        pass
    ada_names = [
        (r.json["type"], r.json["data"].get("changes", {}).get("name"))
        for r in receiver.requests
        if r.json["data"]["contact"]["id"] == str(ada.pk)
    ]
    assert ada_names == [
        ("contact.created", None),
        ("contact.created", None),
        ("contact.updated", ["Ada", "Ada L."]),
        ("contact.updated", ["Ada L.", "Ada Lovelace"]),
    ]
    # Each carries the contact as it was when first sent: all of them after both renames;
    # `changes` tells each step.
    assert {
        r.json["data"]["contact"]["name"]
        for r in receiver.requests
        if r.json["data"]["contact"]["id"] == str(ada.pk)
    } == {"Ada Lovelace"}
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {SUCCEEDED}


def test_due_deliveries_of_one_contact_go_one_at_a_time(agent, endpoint):
    ada = make_contact(agent)
    rename(ada, "Ada L.")
    due = relay.due(timezone.now())
    first = WebhookDelivery.objects.order_by("message_id").first()
    assert due == [first.pk]


# --- A worker killed mid-delivery -----------------------------------------------------------


def test_a_worker_killed_after_sending_lets_the_delivery_go_again_with_the_same_id(
    agent, endpoint, receiver
):
    make_contact(agent)
    delivery = only_delivery()
    # The worker claims and sends, and dies before it records the outcome.
    lease = relay.claim(delivery.pk, timezone.now())
    relay.send(WebhookDelivery.objects.select_related("endpoint", "message").get(pk=delivery.pk))
    assert len(receiver.requests) == 1
    # While its lease lasts, no other worker takes it.
    assert relay.deliver_due() == 0
    assert lease is not None

    # The lease runs out: a worker (after the restart) delivers it again.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )
    assert relay.deliver_due() == 1
    assert only_delivery().status == SUCCEEDED
    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    assert len(receiver.handled) == 1  # exactly once from the receiver's view

    # The dead worker's late record changes nothing.
    assert relay.record(delivery.pk, lease, relay.transport.Attempt(status=500)) is None
    assert only_delivery().status == SUCCEEDED


def test_a_worker_killed_before_sending_leaves_the_delivery_to_the_next(agent, endpoint, receiver):
    make_contact(agent)
    delivery = only_delivery()
    assert relay.claim(delivery.pk, timezone.now()) is not None
    assert relay.claim(delivery.pk, timezone.now()) is None  # held
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )
    assert relay.deliver_due() == 1
    assert len(receiver.requests) == 1
    assert only_delivery().status == SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_the_workers_loop_delivers_what_is_committed(agent, receiver):
    services.endpoint_create(agent=agent, url=receiver.url, events=["contact.created"])
    stop = threading.Event()
    loop = threading.Thread(target=relay.relay_forever, args=(stop,), daemon=True)
    loop.start()
    try:
        make_contact(agent)
        deadline = timezone.now() + timedelta(seconds=20)
        while not receiver.handled and timezone.now() < deadline:
            stop.wait(0.05)
    finally:
        stop.set()
        loop.join(10)
    assert receiver.types() == ["contact.created"]
    assert not loop.is_alive()


def test_the_loop_waits_after_a_pass_that_was_not_full(monkeypatch, settings):
    """A trickle of events is sent in passes of several: only a full pass (more is waiting)
    is followed by another at once; otherwise the loop waits WEBHOOK_POLL_SECONDS."""
    settings.WEBHOOK_POLL_SECONDS = 0.2
    passes: list[int] = []
    stop = threading.Event()

    def one_sent(**kwargs):
        passes.append(1)
        return 1

    monkeypatch.setattr(relay, "deliver_due", one_sent)
    monkeypatch.setattr(relay, "more_due", lambda: False)  # a trickle: nothing else waits
    monkeypatch.setattr(relay, "prune", lambda now=None: 0)
    monkeypatch.setattr(relay, "close_old_connections", lambda: None)
    loop = threading.Thread(target=relay.relay_forever, args=(stop,), daemon=True)
    loop.start()
    stop.wait(0.5)
    stop.set()
    loop.join(5)
    assert 2 <= len(passes) <= 4

    passes.clear()
    monkeypatch.setattr(relay, "deliver_due", lambda **kwargs: passes.append(1) or relay.BATCH)
    stop = threading.Event()
    loop = threading.Thread(target=relay.relay_forever, args=(stop,), daemon=True)
    loop.start()
    stop.wait(0.2)
    stop.set()
    loop.join(5)
    assert len(passes) > 20  # full passes follow one another without a wait


@pytest.mark.django_db(transaction=True)
def test_a_chain_of_messages_goes_out_pass_after_pass_without_waiting(agent, receiver, settings):
    """Messages of one contact (or one import) go out in order, each after the one before:
    a pass that made the next one due is followed by another at once, not by a poll wait."""
    settings.WEBHOOK_POLL_SECONDS = 30  # a wait per message would take minutes
    services.endpoint_create(agent=agent, url=receiver.url, events=["*"])
    contact = make_contact(agent)
    for name in ("Second", "Third", "Fourth"):
        rename(contact, name)
    assert WebhookDelivery.objects.filter(status=PENDING).count() == 4
    stop = threading.Event()
    loop = threading.Thread(target=relay.relay_forever, args=(stop,), daemon=True)
    loop.start()
    try:
        deadline = timezone.now() + timedelta(seconds=15)
        while len(receiver.handled) < 4 and timezone.now() < deadline:
            stop.wait(0.05)
    finally:
        stop.set()
        loop.join(10)
    assert receiver.types() == ["contact.created"] + ["contact.updated"] * 3
    assert not WebhookDelivery.objects.filter(status=PENDING).exists()


# --- Switching a failing endpoint off ---------------------------------------------------------


def test_an_endpoint_failing_for_days_is_switched_off_and_its_deliveries_wait(
    agent, endpoint, receiver, settings
):
    receiver.default = Reply(500)
    make_contact(agent)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS + 1)
    )
    relay.deliver_due()
    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert "every delivery failed for 120 hours" in endpoint.disabled_reason
    assert "The endpoint answered 500." in endpoint.disabled_reason
    make_due()
    assert relay.deliver_due() == 0
    assert only_delivery().status == PENDING

    # An admin turns it back on: the waiting delivery goes out.
    receiver.default = Reply(204)
    services.endpoint_update(endpoint, enabled=True)
    assert (endpoint.disabled_reason, endpoint.failing_since) == ("", None)
    assert relay.deliver_due() == 1
    assert only_delivery().status == SUCCEEDED


def test_a_success_clears_the_failure_record(agent, endpoint, receiver):
    receiver.then(Reply(500), Reply(204))
    make_contact(agent)
    relay.deliver_due()
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is not None
    make_due()
    relay.deliver_due()
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is None


# --- Where deliveries may go ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks",
        "http://10.1.2.3/hooks",
        "http://192.168.0.10/hooks",
        "http://172.16.5.4/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://100.64.0.1/hooks",
        "http://0.0.0.0/hooks",
        "http://localhost:8000/hooks",
    ],
)
def test_private_addresses_are_refused_when_private_networks_are_off(agent, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    assert services.url_problem(url)
    with pytest.raises(Exception, match="url"):
        services.endpoint_create(agent=agent, url=url, events=["*"])
    assert not WebhookEndpoint.objects.exists()


def test_a_name_resolving_to_loopback_is_refused_at_connect_time(
    agent, receiver, settings, monkeypatch
):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    port = receiver.server.server_address[1]
    endpoint, _ = services.endpoint_create(
        agent=agent, url=f"http://hooks.example.com:{port}/hooks", events=["*"]
    )
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "hooks.example.com":
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    make_contact(agent)
    relay.deliver_due()
    delivery = only_delivery()
    assert delivery.status == FAILED
    assert "resolves to 127.0.0.1" in delivery.error
    assert receiver.requests == []  # never reached

    # The same name is fine for a team that allows private networks (development).
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    services.endpoint_send_test(endpoint)
    assert receiver.types() == ["webhook.test"]


def test_production_requires_https(agent, settings):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    assert "https://" in services.url_problem("http://hooks.example.com/x")
    assert services.url_problem("https://hooks.example.com/x") == ""


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "Give the URL"),
        ("ftp://example.com/x", "http:// or https://"),
        ("https://user:pw@example.com/x", "credentials"),
        ("https://exa mple.com/x", "no spaces"),
        ("https:///x", "no host"),
        ("https://example.com:99999/x", "not a valid URL"),
        ("https://example.com/x#frag", "fragment"),
        ("https://example.com/" + "a" * 2000, "at most 2000"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url, message):
    assert message in services.url_problem(url)


def test_the_send_test_event_attempts_at_once(agent, endpoint, receiver):
    delivery = services.endpoint_send_test(endpoint)
    assert (delivery.status, delivery.attempts, delivery.response_status) == (SUCCEEDED, 1, 204)
    (got,) = receiver.requests
    assert Webhook(endpoint.test_secret).verify(got.body, got.headers)["data"]["endpoint"] == {
        "id": str(endpoint.pk),
        "url": endpoint.url,
    }


def test_a_redelivery_sends_the_same_message_again(agent, endpoint, receiver):
    make_contact(agent)
    relay.deliver_due()
    again = services.delivery_redeliver(only_delivery_of(endpoint))
    assert again.message_id == WebhookMessage.objects.get().pk
    relay.deliver_due()
    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    assert WebhookDelivery.objects.get(pk=again.pk).status == SUCCEEDED


def only_delivery_of(endpoint) -> WebhookDelivery:
    return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("created_at").first()


def test_old_finished_deliveries_are_pruned(agent, endpoint, receiver, settings):
    make_contact(agent)
    relay.deliver_due()
    assert relay.prune() == 0
    later = timezone.now() + timedelta(days=settings.WEBHOOK_RETENTION_DAYS + 1)
    assert relay.prune(later) == 1
    assert not WebhookDelivery.objects.exists()
    assert not WebhookMessage.objects.exists()
