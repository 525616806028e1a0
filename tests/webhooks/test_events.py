"""Which changes become webhook events, and what each event says (webhooks.events).

Every test reads the outbox as the worker would: `WebhookMessage` rows (event type, ordering
key, the body as sent) and one pending `WebhookDelivery` per endpoint that wants the event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact, Identity
from contacts.services import (
    contact_create,
    contact_mark_seen,
    contact_restore,
    contact_soft_delete,
    contact_tags_add,
    contact_update,
    contacts_restore_bulk,
    contacts_soft_delete_bulk,
    contacts_tags_add_bulk,
    note_create,
    stripe_account_add,
)
from contacts.signals import ChangeEntry
from core.times import iso
from helpdesk.models import Conversation, Message
from helpdesk.services import conversation_set_status, conversation_start, message_post
from tests.factories import AttributeFactory, ContactFactory, TagFactory
from tests.helpers import agent_url, contact_url
from tests.identity.conftest import Widget
from transfers.bulk.actions import BackgroundRequest, BulkAction, bulk_apply
from transfers.bulk.runner import bulk_job_run
from transfers.bulk.services import bulk_job_start
from transfers.imports.engine import import_run
from transfers.models import ContactImport
from transfers.services import import_create, import_start
from webhooks import events
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from webhooks.rendering import messages_render
from webhooks.services import endpoint_create, endpoint_update

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"
EVERYTHING = ["*"]


# --- Reading the outbox ---------------------------------------------------------------------------


def endpoint(agent, subscribed: list[str] = EVERYTHING, *, enabled: bool = True):
    """An endpoint of `agent` subscribed to `subscribed` (its secret is not needed here)."""
    made, _secret = endpoint_create(
        agent=agent, url="https://hooks.example.com/rapport", events=subscribed
    )
    if not enabled:
        endpoint_update(made, enabled=False)
    return made


def rendered(message: WebhookMessage) -> str:
    """The message's body as it is sent (a draft is rendered now, as the relay would)."""
    messages_render([message])
    return message.body


def body(message: WebhookMessage) -> dict[str, Any]:
    """The message's body, checked to be the envelope every event has."""
    parsed = orjson.loads(rendered(message))
    assert set(parsed) == {"id", "type", "timestamp", "data"}
    assert parsed["id"] == "msg_" + message.uid.hex
    assert parsed["type"] == message.event_type
    assert parsed["timestamp"] == iso(message.created_at)
    assert parsed["timestamp"].endswith("Z")
    return parsed


def outbox(agent, after: int = 0) -> list[WebhookMessage]:
    """The agent's messages in outbox order (after the message id `after`)."""
    return list(WebhookMessage.objects.filter(agent=agent, pk__gt=after).order_by("pk"))


def last_id() -> int:
    """The newest message id so far (0: none), to read what a later step writes."""
    return WebhookMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def types(messages: list[WebhookMessage]) -> list[str]:
    return [m.event_type for m in messages]


def the(messages: list[WebhookMessage], event_type: str) -> WebhookMessage:
    (found,) = [m for m in messages if m.event_type == event_type]
    return found


def delivered_to(message: WebhookMessage) -> set[Any]:
    """The endpoints the message waits for, checked to be pending and due, one each."""
    deliveries = list(WebhookDelivery.objects.filter(message=message))
    for delivery in deliveries:
        assert delivery.status == WebhookDelivery.Status.PENDING
        assert delivery.attempts == 0
        assert delivery.ordering_key == message.ordering_key
        assert delivery.next_attempt_at == message.created_at
    endpoints = [d.endpoint_id for d in deliveries]
    assert len(endpoints) == len(set(endpoints))
    return set(endpoints)


def api_contact(api, contact_id: Any) -> dict[str, Any]:
    response = api.get(f"{URL}{contact_id}/")
    assert response.status_code == 200
    return response.json()


def single(message: WebhookMessage, contact_id: Any) -> dict[str, Any]:
    """The data of a one-contact event, checked to be keyed by that contact."""
    assert message.ordering_key == str(contact_id)
    data = body(message)["data"]
    assert data["contact"]["id"] == str(contact_id)
    return data


@pytest.fixture
def hook(agent):
    """One endpoint of `agent` subscribed to every event."""
    return endpoint(agent)


# --- contact.created ------------------------------------------------------------------------------


def test_a_contact_created_through_the_api_is_one_event_with_the_api_json(api, agent, hook):
    response = api.post(
        URL,
        {"name": "Ada Lovelace", "email": "ada@example.com", "tags": ["vip"]},
    )
    assert response.status_code == 201
    created = response.json()
    (message,) = outbox(agent)
    assert message.event_type == "contact.created"
    data = single(message, created["id"])
    assert data == {"contact": created}
    assert data["contact"] == api_contact(api, created["id"])
    assert delivered_to(message) == {hook.pk}


def test_a_contact_added_on_the_dashboard_is_created_by_staff(staff_client, api, agent, hook):
    response = staff_client.post(agent_url("contacts:new", agent), {"name": "Grace Hopper"})
    assert response.status_code == 302
    contact = Contact.objects.get(agent=agent)
    (message,) = outbox(agent)
    assert message.event_type == "contact.created"
    assert single(message, contact.pk) == {"contact": api_contact(api, contact.pk)}


def test_a_contact_created_by_the_services_is_an_event(api, agent, hook, staff_actor):
    write = contact_create(
        agent=agent, actor=staff_actor, data={"email": "lin@example.com", "company": "Acme"}
    )
    (message,) = outbox(agent)
    data = single(message, write.contact.pk)
    assert data["contact"]["email"] == "lin@example.com"
    assert data["contact"] == api_contact(api, write.contact.pk)


def test_identify_creates_contacts_and_a_returning_visitor_adds_no_event(api, agent, hook):
    widget = Widget(agent)
    assert widget.identify({"email": "sam@example.com", "name": "Sam"}).status_code == 200
    (message,) = outbox(agent)
    contact = Contact.objects.get(agent=agent)
    assert message.event_type == "contact.created"
    data = single(message, contact.pk)
    assert data["contact"]["identity"] == Identity.SELF_REPORTED
    # The contact as it is when the message is first sent: here the visit is marked already
    # (marking it is no event of its own).
    assert data["contact"] == api_contact(api, contact.pk)
    assert data["contact"]["last_seen_at"] is not None

    # The same visitor again with nothing new: only last seen moves.
    before = contact.last_seen_at
    assert widget.identify({"email": "sam@example.com", "name": "Sam"}).status_code == 200
    assert widget.identify({}).status_code == 200
    contact.refresh_from_db()
    assert contact.last_seen_at > before
    assert outbox(agent) == [message]


def test_a_signed_identify_creates_a_verified_contact_once(api, agent, hook):
    widget = Widget(agent)
    claims = {"user_id": "u-7", "contact_attributes": {"name": "Kim", "email": "kim@example.com"}}
    assert widget.jwt(**claims).status_code == 200
    (message,) = outbox(agent)
    contact = Contact.objects.get(agent=agent)
    data = single(message, contact.pk)
    assert message.event_type == "contact.created"
    assert (data["contact"]["external_id"], data["contact"]["identity"]) == ("u-7", "verified")
    # Signing in again on another page load: the same claims write nothing.
    assert Widget(agent).jwt(**claims).status_code == 200
    assert widget.jwt(**claims).status_code == 200
    assert outbox(agent) == [message]


# --- contact.updated: only meaningful changes -----------------------------------------------------


def test_a_patch_reports_the_changed_fields_and_the_api_json(api, agent, hook):
    AttributeFactory(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    created = api.post(URL, {"name": "Ada", "attributes": {"plan": "Free"}}).json()
    start = last_id()
    response = api.patch(
        f"{URL}{created['id']}/",
        {"name": "Ada Lovelace", "company": "Engines", "attributes": {"plan": "Pro"}},
    )
    assert response.status_code == 200
    (message,) = outbox(agent, start)
    assert message.event_type == "contact.updated"
    data = single(message, created["id"])
    assert data["changes"] == {
        "name": ["Ada", "Ada Lovelace"],
        "company": ["", "Engines"],
        "attributes.plan": ["Free", "Pro"],
    }
    assert data["contact"] == response.json() == api_contact(api, created["id"])
    assert delivered_to(message) == {hook.pk}


def test_a_patch_that_changes_nothing_is_no_event(api, agent, hook):
    created = api.post(URL, {"name": "Ada", "email": "ada@example.com", "tags": ["vip"]}).json()
    start = last_id()
    # Tags are matched ignoring case, like the API does; the email's domain is lower-cased.
    same = {"name": "Ada", "email": "ada@EXAMPLE.com", "tags": ["VIP"], "identity": "verified"}
    assert api.patch(f"{URL}{created['id']}/", same).status_code == 200
    assert api.post(URL, {"name": "Ada"}).status_code == 201  # something else: one event
    assert types(outbox(agent, start)) == ["contact.created"]


def test_tags_and_stripe_accounts_are_changes_with_before_and_after(
    api, agent, hook, staff_actor, contact
):
    contact_tags_add(contact=contact, actor=staff_actor, names=["vip"])
    contact_tags_add(contact=contact, actor=staff_actor, names=["VIP"])  # has it: no change
    stripe_account_add(
        contact=contact, actor=staff_actor, data={"label": "Main", "stripe_id": "cus_A1"}
    )
    assert api.delete(f"{URL}{contact.pk}/tags/vip/").status_code == 204
    assert api.delete(f"{URL}{contact.pk}/tags/vip/").status_code == 204  # gone: no change
    tagged, linked, untagged = outbox(agent)
    assert types([tagged, linked, untagged]) == ["contact.updated"] * 3
    assert single(tagged, contact.pk)["changes"] == {"tags": [[], ["vip"]]}
    assert single(linked, contact.pk)["changes"] == {
        "stripe_accounts": [
            None,
            {"label": "Main", "stripe_id": "cus_A1", "stripe_email": ""},
        ]
    }
    untagged_data = single(untagged, contact.pk)
    assert untagged_data["changes"] == {"tags": [["vip"], []]}
    assert untagged_data["contact"] == api_contact(api, contact.pk)
    assert untagged_data["contact"]["stripe_accounts"] == [
        {"label": "Main", "stripe_id": "cus_A1", "stripe_email": ""}
    ]


def test_last_seen_notes_and_conversation_counts_are_no_event(agent, hook, contact, staff_actor):
    contact_mark_seen(contact=contact)
    note_create(contact=contact, actor=staff_actor, body="Called about the invoice.")
    start = last_id()
    conversation_start(agent=agent, contact=contact, first_message="Hello")
    # The conversation is an event of its own; the contact's count and last seen are not.
    assert types(outbox(agent, start)) == ["conversation.created"]
    assert WebhookMessage.objects.count() == 1


def test_a_dashboard_edit_that_changes_nothing_is_no_event(staff_client, agent, hook, contact):
    response = staff_client.post(
        contact_url("edit", contact), {"name": contact.name, "email": contact.email}
    )
    assert response.status_code == 302
    assert outbox(agent) == []
    response = staff_client.post(
        contact_url("edit", contact), {"name": "Ada King", "email": contact.email}
    )
    assert response.status_code == 302
    (message,) = outbox(agent)
    assert single(message, contact.pk)["changes"] == {"name": ["Ada Lovelace", "Ada King"]}


def test_archived_attributes_stay_out_of_the_event_like_the_api_default(api, agent, hook):
    AttributeFactory(agent=agent, key="plan", type="text")
    AttributeFactory(agent=agent, key="legacy", type="text", archived=True)
    contact = ContactFactory(agent=agent, name="Ada", attributes={"plan": "Pro", "legacy": "x"})
    response = api.patch(f"{URL}{contact.pk}/", {"name": "Ada L"})
    assert response.status_code == 200
    (message,) = outbox(agent)
    data = single(message, contact.pk)
    assert data["contact"]["attributes"] == {"plan": "Pro"}
    assert data["contact"] == api_contact(api, contact.pk) == response.json()
    assert "legacy" not in rendered(message)

    # A change of the archived value alone (the API may write it) is no event; beside
    # another change, only the other one is reported.
    start = last_id()
    assert api.patch(f"{URL}{contact.pk}/", {"attributes": {"legacy": "y"}}).status_code == 200
    contact.refresh_from_db()
    assert contact.attributes["legacy"] == "y"
    assert outbox(agent, start) == []
    response = api.patch(f"{URL}{contact.pk}/", {"attributes": {"legacy": "z", "plan": "Max"}})
    assert response.status_code == 200
    (message,) = outbox(agent, start)
    assert single(message, contact.pk)["changes"] == {"attributes.plan": ["Pro", "Max"]}
    assert "legacy" not in rendered(message)


# --- contact.identified ---------------------------------------------------------------------------


def test_a_signed_identify_of_a_self_reported_contact_identifies_it(api, agent, hook):
    created = api.post(
        URL, {"external_id": "u-9", "name": "Noor", "identity": "self_reported"}
    ).json()
    assert created["identity"] == "self_reported"
    start = last_id()
    assert Widget(agent).jwt(user_id="u-9").status_code == 200
    updated, identified = outbox(agent, start)
    assert types([updated, identified]) == ["contact.updated", "contact.identified"]
    update = single(updated, created["id"])
    assert update["changes"]["identity"] == ["self_reported", "verified"]
    data = single(identified, created["id"])
    assert data["identity"] == ["self_reported", "verified"]
    assert data["contact"] == update["contact"]
    # The contact as it is when the message is first sent (verified, the visit marked).
    assert data["contact"] == api_contact(api, created["id"])
    assert data["contact"]["verified_at"] is not None
    assert delivered_to(identified) == {hook.pk}

    # Verified it stays: signing in again, or the API asking for verified, is no event.
    start = last_id()
    assert Widget(agent).jwt(user_id="u-9").status_code == 200
    assert api.patch(f"{URL}{created['id']}/", {"identity": "verified"}).status_code == 200
    assert outbox(agent, start) == []


def test_a_visitor_who_typed_an_email_then_signs_in_is_merged_into_a_new_contact(api, agent, hook):
    """The usual widget path: the contact this browser made while self-reported is merged
    into the verified one the sign-in creates. That contact is verified from its creation, so
    its identity never rises: the receiver sees it created, then the merge."""
    widget = Widget(agent)
    widget.identify({"email": "noor@example.com", "name": "Noor"})
    typed = Contact.objects.get(agent=agent)
    start = last_id()
    claims = {"user_id": "u-3", "contact_attributes": {"email": "noor@example.com"}}
    assert widget.jwt(**claims).status_code == 200
    verified = Contact.objects.get(agent=agent)
    assert verified.pk != typed.pk
    created, merged = outbox(agent, start)
    assert types([created, merged]) == ["contact.created", "contact.merged"]
    assert single(created, verified.pk)["contact"]["identity"] == "verified"
    data = single(merged, verified.pk)
    assert data["merged_contact_id"] == str(typed.pk)
    assert data["changes"] == {"name": ["", "Noor"]}


def test_the_api_raising_the_identity_is_an_update_and_an_identification(api, agent, hook):
    contact = ContactFactory(
        agent=agent, name="Sam", identity=Identity.SELF_REPORTED, identity_source="widget"
    )
    response = api.patch(f"{URL}{contact.pk}/", {"identity": "verified", "company": "Acme"})
    assert response.status_code == 200
    updated, identified = outbox(agent)
    assert types([updated, identified]) == ["contact.updated", "contact.identified"]
    update = single(updated, contact.pk)
    assert update["changes"] == {
        "company": ["", "Acme"],
        "identity": ["self_reported", "verified"],
    }
    data = single(identified, contact.pk)
    assert data["identity"] == ["self_reported", "verified"]
    assert data["contact"] == update["contact"] == response.json()
    assert updated.pk < identified.pk


def test_an_anonymous_visitor_who_writes_then_gives_an_email_is_identified(agent, hook):
    """Through the widget: a visitor who has said nothing gets an anonymous contact when
    they start a conversation; typing an email raises it to self-reported."""
    widget = Widget(agent)
    assert widget.identify({}).status_code == 200
    response = widget.client.post(
        f"/widget/v1/{agent.public_id}/conversations",
        data=json.dumps({"message": "Hello?"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {widget.session_token}",
    )
    assert response.status_code == 201
    anonymous = Contact.objects.get(agent=agent)
    created, started = outbox(agent)
    assert types([created, started]) == ["contact.created", "conversation.created"]
    assert single(created, anonymous.pk)["contact"]["identity"] == "anonymous"
    assert started.ordering_key == str(anonymous.pk)

    start = last_id()
    assert widget.identify({"email": "ana@example.com"}).status_code == 200
    anonymous.refresh_from_db()
    assert anonymous.identity == Identity.SELF_REPORTED
    updated, identified = outbox(agent, start)
    assert types([updated, identified]) == ["contact.updated", "contact.identified"]
    assert single(updated, anonymous.pk)["changes"] == {
        "email": ["", "ana@example.com"],
        "identity": ["anonymous", "self_reported"],
    }
    assert single(identified, anonymous.pk)["identity"] == ["anonymous", "self_reported"]


# --- Deletes, restores, merges, erasures ----------------------------------------------------------


def test_delete_and_restore_of_one_contact(api, agent, hook, contact):
    assert api.delete(f"{URL}{contact.pk}/").status_code == 204
    assert api.delete(f"{URL}{contact.pk}/").status_code == 204  # already deleted: no event
    deleted = outbox(agent)
    assert types(deleted) == ["contact.deleted"]
    data = single(deleted[0], contact.pk)
    assert data["contact"]["deleted_at"] is not None
    assert data == {"contact": api_contact(api, contact.pk)}

    restored = api.post(f"{URL}{contact.pk}/restore/")
    assert restored.status_code == 200
    message = outbox(agent)[-1]
    assert message.event_type == "contact.restored"
    assert single(message, contact.pk) == {"contact": restored.json()}
    assert message.pk > deleted[0].pk


def test_an_upsert_that_restores_and_changes_is_a_restore_and_an_update(api, agent, hook):
    created = api.post(URL, {"external_id": "u-1", "name": "Ada"}).json()
    assert api.delete(f"{URL}{created['id']}/").status_code == 204
    start = last_id()
    response = api.post(URL, {"external_id": "u-1", "name": "Ada Lovelace"})
    assert response.status_code == 200
    restored, updated = outbox(agent, start)
    assert types([restored, updated]) == ["contact.restored", "contact.updated"]
    assert single(restored, created["id"]) == {"contact": response.json()}
    assert single(updated, created["id"]) == {
        "contact": response.json(),
        "changes": {"name": ["Ada", "Ada Lovelace"]},
    }


def test_bulk_delete_and_restore_are_one_batched_event_each(agent, hook, admin_actor):
    people = ContactFactory.create_batch(3, agent=agent)
    ids = [c.pk for c in people]
    assert contacts_soft_delete_bulk(agent=agent, actor=admin_actor, contact_ids=ids) == 3
    assert contacts_soft_delete_bulk(agent=agent, actor=admin_actor, contact_ids=ids) == 0
    (deleted,) = outbox(agent)
    rendered(deleted)  # sent before the restore, as the relay would
    assert contacts_restore_bulk(agent=agent, actor=admin_actor, contact_ids=ids) == 3
    deleted, restored = outbox(agent)
    assert types([deleted, restored]) == ["contact.deleted", "contact.restored"]
    for message in (deleted, restored):
        assert message.ordering_key == "bulk"
        data = body(message)["data"]
        assert set(data) == {"contacts", "source"}
        assert data["source"] == "bulk"
        assert sorted(item["contact"]["id"] for item in data["contacts"]) == sorted(
            str(i) for i in ids
        )
        assert delivered_to(message) == {hook.pk}
    assert all(item["contact"]["deleted_at"] for item in body(deleted)["data"]["contacts"])
    assert not any(item["contact"]["deleted_at"] for item in body(restored)["data"]["contacts"])


def test_single_delete_and_restore_through_the_services(agent, hook, contact, staff_actor):
    contact_soft_delete(contact=contact, actor=staff_actor)
    contact_restore(contact=contact, actor=staff_actor)
    contact_restore(contact=contact, actor=staff_actor)  # live already: no event
    assert types(outbox(agent)) == ["contact.deleted", "contact.restored"]


def test_a_merge_names_the_contact_merged_into_the_primary(api, agent, hook):
    TagFactory(agent=agent, name="vip")
    primary = api.post(URL, {"name": "Ada", "email": "ada@example.com"}).json()
    secondary = api.post(
        URL, {"name": "A. Lovelace", "phone": "+14155550100", "tags": ["vip"]}
    ).json()
    start = last_id()
    response = api.post(f"{URL}merge/", {"primary": primary["id"], "secondary": secondary["id"]})
    assert response.status_code == 200
    (message,) = outbox(agent, start)
    assert message.event_type == "contact.merged"
    data = single(message, primary["id"])
    assert data["merged_contact_id"] == secondary["id"]
    assert data["contact"] == response.json() == api_contact(api, primary["id"])
    assert data["changes"] == {"phone": ["", "+14155550100"], "tags": [[], ["vip"]]}
    # Who was merged in is named by id only.
    assert "A. Lovelace" not in rendered(message)


def test_a_merge_that_raises_the_identity_also_identifies(api, agent, hook):
    primary = ContactFactory(
        agent=agent, name="Sam", identity=Identity.SELF_REPORTED, identity_source="widget"
    )
    secondary = ContactFactory(agent=agent, name="Samuel", external_id="u-5")
    response = api.post(
        f"{URL}merge/", {"primary": str(primary.pk), "secondary": str(secondary.pk)}
    )
    assert response.status_code == 200
    merged, identified = outbox(agent)
    assert types([merged, identified]) == ["contact.merged", "contact.identified"]
    assert single(merged, primary.pk)["merged_contact_id"] == str(secondary.pk)
    assert single(identified, primary.pk)["identity"] == ["self_reported", "verified"]


def test_an_erasure_carries_the_contact_id_and_no_personal_data(api, agent, hook):
    created = api.post(
        URL,
        {
            "name": "Zebulon Quixley",
            "email": "zebulon@example.com",
            "phone": "+14155550199",
            "external_id": "zq-1",
            "company": "Quixley Ltd",
        },
    ).json()
    conversation_start(
        agent=agent,
        contact=Contact.objects.get(pk=created["id"]),
        first_message="I am Zebulon Quixley, zebulon@example.com",
    )
    start = last_id()
    assert api.post(f"{URL}{created['id']}/erase/").status_code == 204
    written = outbox(agent, start)
    assert types(written) == ["contact.erased"]
    (message,) = written
    assert message.ordering_key == created["id"]
    assert body(message)["data"] == {"contact": {"id": created["id"]}}
    for secret in ("Zebulon", "Quixley", "zebulon@example.com", "4155550199", "zq-1"):
        assert secret not in rendered(message)
    assert delivered_to(message) == {hook.pk}


# --- Conversations --------------------------------------------------------------------------------


def test_conversation_created_and_status_changes(agent, hook, contact):
    conversation = conversation_start(agent=agent, contact=contact, first_message="My invoice")
    created = the(outbox(agent), "conversation.created")
    assert created.ordering_key == str(contact.pk)
    conversation.refresh_from_db()
    assert body(created)["data"] == {"conversation": events.conversation_json(conversation)}
    assert body(created)["data"]["conversation"]["subject"] == "My invoice"
    assert body(created)["data"]["conversation"]["contact_id"] == str(contact.pk)

    start = last_id()
    conversation_set_status(conversation=conversation, status=Conversation.Status.CLOSED)
    conversation_set_status(conversation=conversation, status=Conversation.Status.CLOSED)
    message_post(conversation=conversation, role=Message.Role.BOT, body="Anything else?")
    (closed,) = outbox(agent, start)
    assert closed.event_type == "conversation.status_changed"
    data = body(closed)["data"]
    assert data["status"] == ["open", "closed"]
    assert data["conversation"]["status"] == "closed"
    assert closed.ordering_key == str(contact.pk)

    # The visitor writing again reopens it.
    start = last_id()
    message_post(conversation=conversation, role=Message.Role.VISITOR, body="One more thing")
    (reopened,) = outbox(agent, start)
    assert reopened.event_type == "conversation.status_changed"
    assert body(reopened)["data"]["status"] == ["closed", "open"]
    assert delivered_to(reopened) == {hook.pk}


def test_a_conversation_without_a_contact_is_ordered_by_itself(agent, hook):
    conversation = conversation_start(agent=agent, contact=None)
    (message,) = outbox(agent)
    assert message.ordering_key == str(conversation.pk)
    assert body(message)["data"]["conversation"]["contact_id"] is None


# --- Imports and bulk actions ---------------------------------------------------------------------


@pytest.fixture(params=["services", "fast"])
def writer(request, settings) -> str:
    """Imports run through the row-by-row services and the database's set-based fast path
    (COPY on PostgreSQL, bulk statements on SQLite)."""
    settings.IMPORT_FAST_PATH = request.param == "fast"
    return request.param


@pytest.fixture
def run_import(agent, writer) -> Callable[..., ContactImport]:
    def run(content: str, *, dry_run: bool = False) -> ContactImport:
        upload = SimpleUploadedFile("people.csv", content.encode())
        job = import_create(agent=agent, upload=upload, actor_label="import by test")
        import_start(job=job, dry_run=dry_run)
        import_run(job.pk)
        job.refresh_from_db()
        assert job.status == "completed"
        return job

    return run


def people_csv(count: int) -> str:
    rows = "".join(f"u{n},Person {n},person{n}@example.com,vip\n" for n in range(count))
    return "external_id,name,email,tags\n" + rows


def test_an_import_sends_its_contacts_in_batches_of_100_then_completes(
    api, agent, hook, run_import
):
    job = run_import(people_csv(250))
    written = outbox(agent)
    assert types(written) == ["contact.created"] * 3 + ["import.completed"]
    key = f"import:{job.pk}"
    assert {m.ordering_key for m in written} == {key}
    batches = [body(m)["data"] for m in written[:3]]
    assert [len(b["contacts"]) for b in batches] == [100, 100, 50]
    assert all(set(b) == {"contacts", "source"} and b["source"] == key for b in batches)
    ids = [item["contact"]["id"] for b in batches for item in b["contacts"]]
    assert sorted(ids) == sorted(
        str(pk) for pk in Contact.objects.filter(agent=agent).values_list("pk", flat=True)
    )
    sample = batches[2]["contacts"][0]["contact"]
    assert sample == api_contact(api, sample["id"])
    assert sample["tags"] == ["vip"]

    completed = written[-1]
    assert completed.pk > max(m.pk for m in written[:3])
    data = body(completed)["data"]
    assert data["import"]["id"] == str(job.pk)
    assert data["import"]["status"] == "completed"
    assert data["import"]["rows"] == 250
    assert data["import"]["counts"] == {
        "created": 250,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "skipped": 0,
    }
    assert data["import"]["finished_at"] is not None
    assert all(delivered_to(m) == {hook.pk} for m in written)


def test_importing_the_same_file_again_is_no_contact_event(agent, hook, run_import, writer):
    AttributeFactory(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    content = (
        "external_id,name,email,phone,company,plan,tags,stripe_id,stripe_label\n"
        'u1,Ada Lovelace,ada@example.com,+14155550100,Engines,Pro,"vip,beta",cus_A1,Main\n'
        "u2,Grace Hopper,grace@example.com,,Navy,Free,vip,,\n"
    )
    first = run_import(content)
    assert (first.created_count, first.failed_count) == (2, 0)
    start = last_id()
    second = run_import(content)
    assert (second.created_count, second.updated_count, second.unchanged_count) == (0, 0, 2)
    written = outbox(agent, start)
    assert types(written) == ["import.completed"], [body(m)["data"] for m in written]


def test_an_import_changing_a_contact_reports_the_change(agent, hook, run_import):
    run_import("external_id,name,tags\nu1,Ada,vip\n")
    start = last_id()
    job = run_import("external_id,name,tags\nu1,Ada Lovelace,beta\n")
    updated, completed = outbox(agent, start)
    assert types([updated, completed]) == ["contact.updated", "import.completed"]
    (item,) = body(updated)["data"]["contacts"]
    assert item["changes"] == {"name": ["Ada", "Ada Lovelace"], "tags": [["vip"], ["beta", "vip"]]}
    assert body(updated)["data"]["source"] == f"import:{job.pk}"


def test_an_import_bringing_deleted_contacts_back_restores_them(
    agent, hook, run_import, staff_actor
):
    run_import("external_id,name\nu1,Ada\nu2,Grace\n")
    for contact in Contact.objects.filter(agent=agent):
        contact_soft_delete(contact=contact, actor=staff_actor)
    start = last_id()
    job = run_import("external_id,name\nu1,Ada\nu2,Grace Hopper\n")
    assert job.updated_count == 2
    written = outbox(agent, start)
    assert types(written) == ["contact.restored", "contact.updated", "import.completed"]
    restored, updated = (body(m)["data"] for m in written[:2])
    ids = {c.external_id: str(c.pk) for c in Contact.objects.filter(agent=agent)}
    assert sorted(item["contact"]["id"] for item in restored["contacts"]) == sorted(ids.values())
    assert all(item["contact"]["deleted_at"] is None for item in restored["contacts"])
    (item,) = updated["contacts"]
    assert (item["contact"]["id"], item["changes"]) == (
        ids["u2"],
        {"name": ["Grace", "Grace Hopper"]},
    )


def test_a_dry_run_writes_no_event(agent, hook, run_import):
    job = run_import(people_csv(3), dry_run=True)
    assert job.dry_run_summary["created"] == 3
    assert not Contact.objects.filter(agent=agent).exists()
    assert outbox(agent) == []


def test_a_bulk_tag_of_every_matching_contact_is_batched(agent, hook, admin_user):
    people = ContactFactory.create_batch(250, agent=agent)
    already = people[0]
    already.tags.add(TagFactory(agent=agent, name="vip"))
    job = bulk_job_start(
        BackgroundRequest(
            agent=agent,
            user=admin_user,
            action=BulkAction("tag", {"tag": "vip"}),
            query="",
            estimate=250,
        )
    )
    assert bulk_job_run(job.pk) == "completed"
    written = outbox(agent)
    assert types(written) == ["contact.updated"] * 3
    batches = [body(m)["data"] for m in written]
    assert [len(b["contacts"]) for b in batches] == [100, 100, 49]
    assert all(b["source"] == "bulk" for b in batches)
    items = [item for b in batches for item in b["contacts"]]
    assert {item["contact"]["id"] for item in items} == {str(c.pk) for c in people[1:]}
    assert all(item["changes"] == {"tags": [[], ["vip"]]} for item in items)
    assert all(item["contact"]["tags"] == ["vip"] for item in items)


def test_a_bulk_untag_of_the_selection_reports_the_tags_before_and_after(agent, hook, admin_actor):
    vip, beta = TagFactory(agent=agent, name="VIP"), TagFactory(agent=agent, name="beta")
    people = ContactFactory.create_batch(3, agent=agent)
    people[0].tags.add(vip, beta)
    people[1].tags.add(vip)
    changed = bulk_apply(
        agent=agent,
        actor=admin_actor,
        action=BulkAction("untag", {"tag": "vip"}),
        contact_ids=[c.pk for c in people],
    )
    assert set(changed) == {people[0].pk, people[1].pk}
    (message,) = outbox(agent)
    assert (message.event_type, message.ordering_key) == ("contact.updated", "bulk")
    items = {i["contact"]["id"]: i["changes"] for i in body(message)["data"]["contacts"]}
    assert items == {
        str(people[0].pk): {"tags": [["beta", "VIP"], ["beta"]]},
        str(people[1].pk): {"tags": [["VIP"], []]},
    }


def test_a_services_bulk_tag_reports_the_tags_before_and_after(agent, hook, admin_actor):
    people = ContactFactory.create_batch(2, agent=agent)
    people[0].tags.add(TagFactory(agent=agent, name="beta"))
    contacts_tags_add_bulk(
        agent=agent, actor=admin_actor, contact_ids=[c.pk for c in people], names=["vip"]
    )
    (message,) = outbox(agent)
    items = {i["contact"]["id"]: i["changes"] for i in body(message)["data"]["contacts"]}
    assert items == {
        str(people[0].pk): {"tags": [["beta"], ["beta", "vip"]]},
        str(people[1].pk): {"tags": [[], ["vip"]]},
    }


# --- Subscriptions --------------------------------------------------------------------------------


def test_each_endpoint_gets_the_events_it_subscribed_to(api, agent, other_agent):
    deletes = endpoint(agent, ["contact.deleted"])
    everything = endpoint(agent, EVERYTHING)
    off = endpoint(agent, EVERYTHING, enabled=False)
    theirs = endpoint(other_agent, EVERYTHING)
    created = api.post(URL, {"name": "Ada"}).json()
    assert api.patch(f"{URL}{created['id']}/", {"name": "Ada L"}).status_code == 200
    assert api.delete(f"{URL}{created['id']}/").status_code == 204
    written = outbox(agent)
    assert types(written) == ["contact.created", "contact.updated", "contact.deleted"]
    assert [delivered_to(m) for m in written] == [
        {everything.pk},
        {everything.pk},
        {deletes.pk, everything.pk},
    ]
    assert not WebhookDelivery.objects.filter(endpoint__in=[off, theirs]).exists()
    assert not WebhookMessage.objects.filter(agent=other_agent).exists()


def test_an_endpoint_for_identifications_gets_them_without_the_update(api, agent):
    identifications = endpoint(agent, ["contact.identified"])
    contact = ContactFactory(agent=agent, identity=Identity.SELF_REPORTED)
    assert api.patch(f"{URL}{contact.pk}/", {"identity": "verified"}).status_code == 200
    (message,) = outbox(agent)
    assert message.event_type == "contact.identified"
    assert delivered_to(message) == {identifications.pk}


def test_an_event_no_endpoint_wants_is_not_written(api, agent):
    endpoint(agent, ["contact.deleted"])
    created = api.post(URL, {"name": "Ada"}).json()
    assert outbox(agent) == []
    assert api.delete(f"{URL}{created['id']}/").status_code == 204
    assert types(outbox(agent)) == ["contact.deleted"]


def test_a_disabled_endpoint_gets_nothing(api, agent):
    endpoint(agent, EVERYTHING, enabled=False)
    assert api.post(URL, {"name": "Ada"}).status_code == 201
    assert not WebhookMessage.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_an_agent_without_endpoints_writes_nothing_for_one_query(
    api, agent, other_agent, contact, admin_actor
):
    endpoint(other_agent)
    created = api.post(URL, {"name": "Ada", "tags": ["vip"]}).json()
    assert api.patch(f"{URL}{created['id']}/", {"name": "Ada L"}).status_code == 200
    contacts_soft_delete_bulk(
        agent=agent, actor=admin_actor, contact_ids=[contact.pk, created["id"]]
    )
    conversation_start(agent=agent, contact=contact)
    assert not WebhookMessage.objects.exists()
    assert not WebhookDelivery.objects.exists()
    entry = ChangeEntry(contact.pk, "updated", {"name": ["A", "B"]})
    with CaptureQueriesContext(connection) as queries:
        events.on_contacts_changed(None, agent_id=agent.pk, entries=[entry], source="")
    assert len(queries) == 1


def test_another_agents_changes_never_reach_this_agents_endpoint(other_api, agent, other_agent):
    mine = endpoint(agent)
    theirs = endpoint(other_agent)
    created = other_api.post(URL, {"name": "Their contact"}).json()
    assert outbox(agent) == []
    (message,) = outbox(other_agent)
    assert single(message, created["id"])["contact"]["name"] == "Their contact"
    assert delivered_to(message) == {theirs.pk}
    assert not WebhookDelivery.objects.filter(endpoint=mine).exists()


# --- Transactions ---------------------------------------------------------------------------------


class Undone(Exception):
    """Raised to roll a change back."""


def test_a_change_that_rolls_back_leaves_no_event(agent, hook, contact, staff_actor):
    def change_then_fail() -> None:
        with transaction.atomic():
            contact_update(contact=contact, actor=staff_actor, data={"name": "Someone else"})
            contact_create(agent=agent, actor=staff_actor, data={"name": "New"})
            conversation_start(agent=agent, contact=contact)
            assert len(outbox(agent)) == 3  # written inside, with the change
            raise Undone

    with pytest.raises(Undone):
        change_then_fail()
    assert outbox(agent) == []
    assert not WebhookDelivery.objects.exists()
    contact.refresh_from_db()
    assert contact.name == "Ada Lovelace"


def test_an_endpoint_is_read_inside_the_change(agent, contact, staff_actor):
    """An endpoint disabled in the same transaction as a change gets nothing of it."""
    made = endpoint(agent)
    with transaction.atomic():
        endpoint_update(made, enabled=False)
        contact_update(contact=contact, actor=staff_actor, data={"name": "Ada King"})
    assert outbox(agent) == []
    assert WebhookEndpoint.objects.get(pk=made.pk).enabled is False
