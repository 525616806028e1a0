from __future__ import annotations

import pytest

from contacts.models import AuditEvent, Contact, Identity, StripeAccount
from tests.factories import (
    AttributeFactory,
    ContactFactory,
    ConversationFactory,
    StripeAccountFactory,
    TagFactory,
)
from tests.helpers import error

pytestmark = pytest.mark.django_db

BULK = "/api/v1/contacts/bulk/"
ENSURE = "/api/v1/contacts/ensure/"
MERGE = "/api/v1/contacts/merge/"


# --- Bulk ------------------------------------------------------------------------------------


def test_bulk_reports_each_item_and_a_bad_one_does_not_fail_the_others(api, agent):
    existing = ContactFactory(agent=agent, external_id="u1", name="Old")
    AttributeFactory(agent=agent, key="mrr", type="number")
    response = api.post(
        BULK,
        {
            "contacts": [
                {"external_id": "u1", "name": "New"},
                {"external_id": "u2", "email": "two@example.com", "attributes": {"mrr": "7"}},
                {"email": "broken"},
                {"name": "No id"},
                "not an object",
                {"external_id": "u2", "name": "Two again"},
                {"attributes": {"mrr": "many"}, "external_id": "u3"},
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"], body["errors"]) == (2, 2, 3)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["status"] for r in results] == [
        "updated", "created", "error", "created", "error", "updated", "error",
    ]  # fmt: skip
    assert results[0]["id"] == str(existing.pk)
    assert results[1]["id"] == results[5]["id"]
    assert results[2]["error"]["fields"] == {"email": ["'broken' is not a valid email address."]}
    assert results[2]["id"] is None
    assert "Expected a dictionary" in results[4]["error"]["message"]
    assert "attributes.mrr" in results[6]["error"]["fields"]
    assert all(r["error"] is None for r in results if r["status"] != "error")
    assert Contact.objects.filter(agent=agent).count() == 3
    two = Contact.objects.get(agent=agent, external_id="u2")
    assert (two.name, two.email, two.attributes) == ("Two again", "two@example.com", {"mrr": 7})
    assert not Contact.objects.filter(external_id="u3").exists()


def test_bulk_takes_at_most_1000_contacts(api, agent):
    response = api.post(BULK, {"contacts": [{"name": f"P{n}"} for n in range(1001)]})
    assert response.status_code == 400
    assert error(response)["fields"] == {
        "contacts": ["Ensure this field has no more than 1000 elements."]
    }
    assert not Contact.objects.exists()
    assert api.post(BULK, {"contacts": []}).status_code == 400
    assert api.post(BULK, {"contacts": {"name": "x"}}).status_code == 400
    assert api.post(BULK, {"people": []}).status_code == 400


def test_bulk_of_1000_contacts_is_written(api, agent):
    items = [{"external_id": f"u{n}", "name": f"P{n}"} for n in range(1000)]
    body = api.post(BULK, {"contacts": items}).json()
    assert (body["created"], body["errors"]) == (1000, 0)
    assert Contact.objects.filter(agent=agent).count() == 1000
    again = api.post(BULK, {"contacts": items}).json()
    assert (again["created"], again["updated"]) == (0, 1000)


# --- Ensure ----------------------------------------------------------------------------------


def test_ensure_with_a_fingerprint_is_idempotent_and_verified(api, agent):
    first = api.post(ENSURE, {"fingerprint": "user-7", "name": "Ada"})
    second = api.post(ENSURE, {"fingerprint": "user-7", "name": "Changed", "email": "a@x.org"})
    assert first.status_code == 201
    assert second.status_code == 200
    assert set(first.json()) == {"id", "created", "verified"}
    assert first.json() == {"id": first.json()["id"], "created": True, "verified": True}
    assert second.json() == {"id": first.json()["id"], "created": False, "verified": True}
    contact = Contact.objects.get(agent=agent)
    # Only blanks are filled by ensure.
    assert (contact.external_id, contact.name, contact.email) == ("user-7", "Ada", "a@x.org")


def test_ensure_without_a_fingerprint_keys_on_email_then_phone_then_name(api, agent):
    a = api.post(ENSURE, {"email": "Ada@Example.com", "name": "Ada"})
    b = api.post(ENSURE, {"email": "ada@example.COM"})
    assert (a.status_code, b.status_code) == (201, 200)
    assert a.json()["id"] == b.json()["id"]
    assert a.json()["verified"] is False
    by_phone = api.post(ENSURE, {"phone": "+1 415 555 2671"}).json()
    assert api.post(ENSURE, {"phone": "(415) 555-2671"}).json()["id"] == by_phone["id"]
    by_name = api.post(ENSURE, {"name": "Grace  Hopper"}).json()
    assert api.post(ENSURE, {"name": "grace hopper"}).json()["id"] == by_name["id"]
    assert Contact.objects.filter(agent=agent).count() == 3
    assert set(Contact.objects.values_list("identity", flat=True)) == {Identity.SELF_REPORTED}


def test_unverified_ensure_never_returns_a_verified_contact(api, agent):
    verified = ContactFactory(agent=agent, email="ada@example.com", identity=Identity.VERIFIED)
    first = api.post(ENSURE, {"email": "ada@example.com"}).json()
    second = api.post(ENSURE, {"email": "ada@example.com"}).json()
    assert first["id"] != str(verified.pk)
    assert first == {"id": first["id"], "created": True, "verified": False}
    assert second == {"id": first["id"], "created": False, "verified": False}
    # Once that contact is verified (e.g. by an upsert), ensure stops returning it.
    api.patch(f"/api/v1/contacts/{first['id']}/", {"identity": "verified"})
    third = api.post(ENSURE, {"email": "ada@example.com"}).json()
    assert third["id"] not in (first["id"], str(verified.pk))
    assert third["verified"] is False


def test_ensure_needs_something_to_key_on(api, agent):
    response = api.post(ENSURE, {"company": "Acme"})
    assert response.status_code == 400
    assert "fingerprint" in error(response)["fields"]
    assert api.post(ENSURE, {"fingerprint": 12}).status_code == 400
    assert api.post(ENSURE, {"tags": ["x"]}).json()["error"]["fields"] == {
        "tags": ["Unknown field."]
    }
    assert not Contact.objects.exists()


# --- Merge -----------------------------------------------------------------------------------


def test_merge_moves_everything_to_the_primary_and_removes_the_secondary(api, agent):
    primary = ContactFactory(agent=agent, name="Ada", email="", attributes={"plan": "Pro"})
    secondary = ContactFactory(
        agent=agent,
        external_id="crm-1",
        name="Ada L.",
        email="ada@example.com",
        attributes={"plan": "Free", "city": "London"},
    )
    primary.tags.add(TagFactory(agent=agent, name="vip"))
    secondary.tags.add(TagFactory(agent=agent, name="beta"))
    StripeAccountFactory(contact=secondary, stripe_id="cus_MOVE1")
    conversation = ConversationFactory(agent=agent, contact=secondary)
    response = api.post(MERGE, {"primary": str(primary.pk), "secondary": str(secondary.pk)})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(primary.pk)
    assert body["name"] == "Ada"  # primary wins
    assert body["email"] == "ada@example.com"  # secondary fills blanks
    assert body["external_id"] == "crm-1"
    assert body["tags"] == ["beta", "vip"]
    assert [a["stripe_id"] for a in body["stripe_accounts"]] == ["cus_MOVE1"]
    primary.refresh_from_db()
    assert primary.attributes == {"plan": "Pro", "city": "London"}
    assert not Contact.objects.filter(pk=secondary.pk).exists()
    conversation.refresh_from_db()
    assert conversation.contact_id == primary.pk
    assert StripeAccount.objects.get(stripe_id="cus_MOVE1").contact_id == primary.pk
    assert AuditEvent.objects.filter(contact_id=primary.pk, action="merged").exists()


def test_merge_refuses_two_different_external_ids_with_409(api, agent):
    a = ContactFactory(agent=agent, external_id="a")
    b = ContactFactory(agent=agent, external_id="b")
    response = api.post(MERGE, {"primary": str(a.pk), "secondary": str(b.pk)})
    assert response.status_code == 409
    assert error(response)["code"] == "conflict"
    assert "'a' and 'b'" in error(response)["message"]
    assert Contact.objects.filter(pk__in=[a.pk, b.pk]).count() == 2
    same = api.post(MERGE, {"primary": str(a.pk), "secondary": str(a.pk)})
    assert same.status_code == 409


def test_merge_with_an_unknown_or_foreign_contact_is_404(api, agent, other_agent):
    mine = ContactFactory(agent=agent)
    theirs = ContactFactory(agent=other_agent)
    response = api.post(MERGE, {"primary": str(mine.pk), "secondary": str(theirs.pk)})
    assert response.status_code == 404
    assert "secondary" in error(response)["message"]
    assert Contact.objects.filter(pk=theirs.pk).exists()
    bad = api.post(MERGE, {"primary": "x", "secondary": 5})
    assert bad.status_code == 400
    assert set(error(bad)["fields"]) == {"primary", "secondary"}
