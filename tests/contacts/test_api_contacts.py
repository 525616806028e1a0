from __future__ import annotations

import pytest

from contacts.models import AuditEvent, Contact, Identity
from helpdesk.models import Message
from tests.factories import (
    AttributeFactory,
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    StripeAccountFactory,
    TagFactory,
)
from tests.helpers import CONTACT_FIELDS, error

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"


@pytest.fixture
def schema(agent):
    AttributeFactory(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    AttributeFactory(agent=agent, key="mrr", type="number")
    AttributeFactory(agent=agent, key="beta", type="boolean")
    AttributeFactory(agent=agent, key="legacy", type="text", archived=True)


def test_create_answers_201_with_exactly_the_fields_of_spec_5(api, agent, schema):
    response = api.post(
        URL,
        {
            "name": "  Ada   Lovelace ",
            "email": "Ada@Math.ORG",
            "phone": "(415) 555-2671",
            "company": "Analytical Engines",
            "avatar_url": "https://example.com/ada.png",
            "attributes": {"plan": "pro", "mrr": "42.50", "beta": "yes"},
            "tags": ["VIP", "beta"],
            "stripe_accounts": [{"label": "Main", "stripe_id": "cus_ABC123"}],
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == CONTACT_FIELDS
    contact = Contact.objects.get(agent=agent)
    assert body["id"] == str(contact.pk)
    assert body["external_id"] is None
    assert body["name"] == "Ada Lovelace"
    assert body["email"] == "Ada@math.org"
    assert body["phone"] == "+14155552671"  # agent's default region US
    assert body["company"] == "Analytical Engines"
    assert body["avatar_url"] == "https://example.com/ada.png"
    assert body["identity"] == "verified"  # the API is a trusted channel
    assert body["verified_at"] == body["created_at"]
    assert body["attributes"] == {"plan": "Pro", "mrr": 42.5, "beta": True}
    assert body["tags"] == ["beta", "VIP"]
    assert body["stripe_accounts"] == [
        {"label": "Main", "stripe_id": "cus_ABC123", "stripe_email": ""}
    ]
    assert body["deleted_at"] is None
    assert body["first_seen_at"] is None
    assert body["last_seen_at"] is None
    assert body["created_at"].endswith("Z")
    event = AuditEvent.objects.get(contact_id=contact.pk)
    assert (event.action, event.channel) == ("created", "api")
    assert event.actor_label.startswith("API key test")


def test_upsert_twice_gives_one_contact_201_then_200(api, agent):
    first = api.post(URL, {"external_id": "user-42", "name": "Ada"})
    second = api.post(URL, {"external_id": "user-42", "email": "ada@example.com"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Contact.objects.filter(agent=agent).count() == 1
    contact = Contact.objects.get(agent=agent)
    # Fields left out keep their values.
    assert (contact.name, contact.email, contact.external_id) == (
        "Ada",
        "ada@example.com",
        "user-42",
    )


def test_upsert_restores_a_soft_deleted_match(api, agent):
    gone = ContactFactory(agent=agent, external_id="u1", deleted_at="2024-01-01T00:00:00Z")
    response = api.post(URL, {"external_id": "u1", "name": "Back"})
    assert response.status_code == 200
    assert response.json()["id"] == str(gone.pk)
    assert response.json()["deleted_at"] is None
    gone.refresh_from_db()
    assert gone.deleted_at is None
    assert gone.name == "Back"


def test_without_external_id_every_post_creates(api, agent):
    assert api.post(URL, {"name": "A"}).status_code == 201
    assert api.post(URL, {"name": "A"}).status_code == 201
    assert Contact.objects.filter(agent=agent).count() == 2


def test_the_identity_of_a_new_contact_can_be_chosen_but_never_lowered(api, agent):
    created = api.post(URL, {"external_id": "lead", "identity": "self_reported"})
    assert created.json()["identity"] == "self_reported"
    assert created.json()["verified_at"] is None
    raised = api.post(URL, {"external_id": "lead", "identity": "verified"})
    assert raised.json()["identity"] == "verified"
    kept = api.post(URL, {"external_id": "lead", "identity": "anonymous"})
    assert kept.json()["identity"] == "verified"


@pytest.mark.parametrize(
    ("identity", "body", "fields"),
    [
        (Identity.VERIFIED, {"identity": "self_reported", "name": "New"}, {"identity"}),
        (Identity.VERIFIED, {"identity": "anonymous"}, {"identity"}),
        (Identity.SELF_REPORTED, {"identity": "anonymous"}, {"identity"}),
        (Identity.VERIFIED, {"verified_at": None, "name": "New"}, {"verified_at"}),
        (
            Identity.VERIFIED,
            {"identity": "anonymous", "verified_at": None},
            {"identity", "verified_at"},
        ),
    ],
)
def test_a_patch_that_lowers_identity_is_refused_and_changes_nothing(
    api, agent, identity, body, fields
):
    contact = ContactFactory(agent=agent, name="Old", identity=identity)
    before = (contact.identity, contact.verified_at, contact.updated_at)
    response = api.patch(f"{URL}{contact.pk}/", body)
    assert response.status_code == 400
    problem = error(response)
    assert problem["code"] == "identity_cannot_be_lowered"
    assert set(problem["fields"]) == fields
    assert "only goes up" in problem["message"]
    contact.refresh_from_db()
    assert (contact.identity, contact.verified_at, contact.updated_at) == before
    assert contact.name == "Old"
    assert not AuditEvent.objects.filter(contact_id=contact.pk, action="updated").exists()


@pytest.mark.parametrize("value", [{"level": "anonymous"}, ["anonymous"], 1, None])
def test_a_patch_with_an_identity_of_the_wrong_type_is_a_validation_error(api, agent, value):
    contact = ContactFactory(agent=agent, identity=Identity.VERIFIED)
    response = api.patch(f"{URL}{contact.pk}/", {"identity": value})
    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    assert set(error(response)["fields"]) == {"identity"}


def test_a_patch_may_repeat_or_raise_the_identity(api, agent):
    contact = ContactFactory(agent=agent, identity=Identity.SELF_REPORTED)
    url = f"{URL}{contact.pk}/"
    assert api.patch(url, {"identity": "self_reported"}).json()["identity"] == "self_reported"
    raised = api.patch(url, {"identity": "verified"}).json()
    assert raised["identity"] == "verified"
    assert raised["verified_at"] is not None
    assert api.patch(url, {"identity": "verified"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": 42}, "name", "Must be a string."),
        ({"emial": "a@b.c"}, "emial", "Unknown field."),
        ({"email": "not-an-email"}, "email", "'not-an-email' is not a valid email address."),
        ({"phone": "12"}, "phone", "'12' is not a valid phone number for region US"),
        ({"tags": "vip"}, "tags", 'Expected a list of items but got type "str".'),
        ({"tags": ["a,b"]}, "tags", "Tag 'a,b' may not contain a comma."),
        ({"attributes": {"mrr": "lots"}}, "attributes.mrr", "mrr: not a number"),
        ({"attributes": {"mrr": [1]}}, "attributes.mrr", "must be a string, number or boolean"),
        ({"attributes": {"nope": 1}}, "attributes.nope", "No attribute with key 'nope' exists."),
        ({"attributes": {"plan": "Gold"}}, "attributes.plan", "not one of the options"),
        ({"stripe_accounts": [{"stripe_id": "acct_1"}]}, "stripe_accounts[0].stripe_id", ""),
        ({"identity": "vip"}, "identity", '"vip" is not a valid choice.'),
        ({"external_id": 7}, "external_id", "Must be a string."),
    ],
)
def test_bad_values_answer_400_naming_the_field_and_write_nothing(
    api, agent, schema, body, field, message
):
    response = api.post(URL, body)
    assert response.status_code == 400
    err = error(response)
    assert err["code"] == "validation_error"
    assert field in err["fields"], err
    assert message in " ".join(err["fields"][field])
    assert err["message"].startswith(field)
    assert not Contact.objects.filter(agent=agent).exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        ("{not json", "application/json", 400, "not valid JSON"),
        ('{"name": "\\ud800"}', "application/json", 400, "not valid JSON"),
        ("[" * 5000 + "]" * 5000, "application/json", 400, "not valid JSON"),
        ('{"name": NaN}', "application/json", 400, "not valid JSON"),
        ("[1, 2]", "application/json", 400, "Expected a dictionary"),
        ('"text"', "application/json", 400, "Expected a dictionary"),
        ("name=Ada", "application/x-www-form-urlencoded", 415, "Unsupported media type"),
    ],
)
def test_malformed_bodies_are_refused_cleanly(api, agent, body, content_type, status, fragment):
    response = api.post(URL, body, content_type=content_type)
    assert response.status_code == status
    assert fragment in error(response)["message"]
    assert not Contact.objects.filter(agent=agent).exists()


def test_oversized_bodies_answer_413(api, agent, settings):
    settings.API_MAX_BODY_BYTES = 2048
    response = api.post(URL, {"name": "x" * 3000})
    assert response.status_code == 413
    err = error(response)
    assert err["code"] == "payload_too_large"
    assert "2,048 bytes" in err["message"]
    assert not Contact.objects.filter(agent=agent).exists()


def test_get_returns_the_contact_and_hides_archived_attributes_unless_asked(api, agent, schema):
    contact = ContactFactory(agent=agent, attributes={"plan": "Pro", "legacy": "old"})
    contact.tags.add(TagFactory(agent=agent, name="zeta"), TagFactory(agent=agent, name="Alpha"))
    StripeAccountFactory(contact=contact, stripe_id="cus_X1", stripe_email="b@x.org")
    response = api.get(f"{URL}{contact.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == CONTACT_FIELDS
    assert body["attributes"] == {"plan": "Pro"}
    assert body["tags"] == ["Alpha", "zeta"]
    assert body["stripe_accounts"] == [
        {"label": "Main", "stripe_id": "cus_X1", "stripe_email": "b@x.org"}
    ]
    full = api.get(f"{URL}{contact.pk}/?include_archived_attributes=true").json()
    assert full["attributes"] == {"plan": "Pro", "legacy": "old"}
    bad = api.get(f"{URL}{contact.pk}/?include_archived_attributes=maybe")
    assert bad.status_code == 400
    assert "include_archived_attributes" in error(bad)["fields"]


def test_patch_merges_attributes_clears_with_null_and_replaces_tags(api, agent, schema):
    contact = ContactFactory(
        agent=agent, name="Ada", company="Old", attributes={"plan": "Free", "mrr": 5}
    )
    contact.tags.add(TagFactory(agent=agent, name="old"))
    response = api.patch(
        f"{URL}{contact.pk}/",
        {"company": None, "attributes": {"mrr": None, "beta": True}, "tags": ["new", "New"]},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Ada"  # untouched
    assert body["company"] == ""
    assert body["attributes"] == {"plan": "Free", "beta": True}
    assert body["tags"] == ["new"]
    contact.refresh_from_db()
    assert contact.attributes == {"plan": "Free", "beta": True}
    event = AuditEvent.objects.get(contact_id=contact.pk, action="updated")
    assert event.changes["attributes.mrr"] == [5, None]


def test_patch_sets_an_external_id_once_and_refuses_changing_or_stealing_it(api, agent):
    contact = ContactFactory(agent=agent, external_id=None)
    ContactFactory(agent=agent, external_id="taken")
    url = f"{URL}{contact.pk}/"
    clash = api.patch(url, {"external_id": "taken"})
    assert clash.status_code == 409
    assert error(clash)["fields"] == {"external_id": ["Already used by another contact."]}
    assert api.patch(url, {"external_id": "mine"}).json()["external_id"] == "mine"
    again = api.patch(url, {"external_id": "other"})
    assert again.status_code == 400
    assert "cannot change" in error(again)["fields"]["external_id"][0]
    assert api.patch(url, {"id": "x"}).json()["error"]["fields"] == {
        "id": ["The id of a contact cannot change."]
    }


def test_delete_soft_deletes_and_restore_brings_back(api, agent):
    contact = ContactFactory(agent=agent)
    conversation = ConversationFactory(agent=agent, contact=contact)
    response = api.delete(f"{URL}{contact.pk}/")
    assert response.status_code == 204
    assert response.content == b""
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    conversation.refresh_from_db()
    assert conversation.contact_id == contact.pk  # conversations are kept
    # Still fetchable, marked deleted; listed only with deleted=true.
    assert api.get(f"{URL}{contact.pk}/").json()["deleted_at"] is not None
    assert api.get(URL).json()["results"] == []
    assert [c["id"] for c in api.get(f"{URL}?deleted=true").json()["results"]] == [str(contact.pk)]
    restored = api.post(f"{URL}{contact.pk}/restore/")
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    assert [c["id"] for c in api.get(URL).json()["results"]] == [str(contact.pk)]


def test_erase_removes_the_contact_and_anonymizes_its_transcripts(api, agent):
    contact = ContactFactory(agent=agent, name="Ada Lovelace", email="ada@math.org")
    conversation = ConversationFactory(agent=agent, contact=contact)
    message = MessageFactory(conversation=conversation, body="Hi, I'm Ada Lovelace (ada@math.org)")
    StripeAccountFactory(contact=contact)
    response = api.post(f"{URL}{contact.pk}/erase/")
    assert response.status_code == 204
    assert not Contact.objects.filter(pk=contact.pk).exists()
    message.refresh_from_db()
    assert "Ada" not in message.body
    assert "ada@math.org" not in message.body
    conversation.refresh_from_db()
    assert conversation.contact_id is None
    assert conversation.contact_erased
    assert list(
        AuditEvent.objects.filter(contact_id=contact.pk).values_list("action", flat=True)
    ) == ["erased"]
    assert api.get(f"{URL}{contact.pk}/").status_code == 404
    assert Message.objects.filter(conversation=conversation).count() == 1


def test_unknown_and_malformed_ids_answer_404_in_the_error_shape(api):
    for path in (
        f"{URL}01890a5d-ac96-774b-bcce-b302099a8057/",
        f"{URL}not-a-uuid/",
        f"{URL}not-a-uuid/restore/",
        "/api/v1/nothing-here/",
    ):
        response = api.get(path)
        assert response.status_code == 404, path
        assert error(response)["code"] == "not_found"


def test_a_missing_trailing_slash_says_where_to_go(api):
    response = api.get("/api/v1/contacts")
    assert response.status_code == 404
    assert "Did you mean /api/v1/contacts/ ?" in error(response)["message"]


def test_wrong_methods_answer_405_with_allow(api, agent):
    contact = ContactFactory(agent=agent)
    response = api.put(f"{URL}{contact.pk}/", {}, content_type="application/json")
    assert response.status_code == 405
    assert error(response)["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PATCH", "DELETE"}
    assert api.get(f"{URL}bulk/").status_code == 405


def test_writes_to_verified_contacts_are_allowed_for_the_api(api, agent):
    contact = ContactFactory(agent=agent, identity=Identity.VERIFIED)
    assert api.patch(f"{URL}{contact.pk}/", {"name": "New"}).json()["name"] == "New"


def test_unknown_api_paths_answer_json_404_to_every_method(api):
    for method in ("post", "patch", "delete", "put"):
        response = getattr(api, method)("/api/v1/contacts/null,null/restore/")
        assert response.status_code == 404, method
        assert error(response)["code"] == "not_found"
