"""Self-reported identify (SPEC 6, mode 3) and the rules that keep an unverified visitor
from reading or changing a verified contact."""

from __future__ import annotations

import pytest

from attributes.models import AttributeDefinition
from contacts.models import AuditEvent, Contact, Identity
from identity.models import VisitorSession
from tests.factories import AttributeFactory, ContactFactory
from tests.identity.conftest import Widget

pytestmark = pytest.mark.django_db


def _session(widget) -> VisitorSession:
    return VisitorSession.objects.get(agent=widget.agent, visitor_id=widget.visitor_id)


def test_it_creates_a_self_reported_contact_owned_by_the_session(widget, agent):
    response = widget.identify({"email": "Sam@Example.com", "name": "Sam", "phone": "4155550123"})
    assert response.status_code == 200
    body = response.json()
    contact = Contact.objects.get(agent=agent)
    assert body["contact"] == {"id": str(contact.pk), "name": "Sam", "identity": "self_reported"}
    assert (contact.email, contact.phone, contact.external_id) == (
        "Sam@example.com",
        "+14155550123",
        None,
    )
    assert contact.identity_source == "widget"
    assert contact.first_seen_at is not None
    session = _session(widget)
    assert session.contact_id == contact.pk
    assert session.created_contact
    assert AuditEvent.objects.get(contact_id=contact.pk).channel == "widget"


def test_the_creating_session_may_correct_its_own_answers(widget, agent):
    widget.identify({"email": "sam@example.com", "name": "Sma"})
    response = widget.identify({"email": "sam@example.com", "name": "Sam"})
    assert response.json()["ignored_keys"] == []
    assert Contact.objects.get(agent=agent).name == "Sam"


def test_another_visitor_with_the_same_email_only_fills_blanks(widget_factory, agent):
    AttributeFactory(agent=agent, key="city", type="text")
    first = widget_factory()
    first.identify({"email": "sam@example.com", "name": "Sam", "custom_data": {"city": "Oslo"}})
    second = widget_factory()
    response = second.identify(
        {
            "email": "SAM@example.com",
            "name": "Mallory",
            "phone": "+14155550123",
            "custom_data": {"city": "Paris"},
        }
    )
    body = response.json()
    contact = Contact.objects.get(agent=agent)
    assert body["contact"]["id"] == str(contact.pk)
    # Saved values stay; the blank phone is filled.
    assert (contact.name, contact.phone, contact.attributes) == (
        "Sam",
        "+14155550123",
        {"city": "Oslo"},
    )
    # The second visitor sees the name it typed, not what the contact holds.
    assert body["contact"]["name"] == "Mallory"
    assert {(e["key"], e["code"]) for e in body["ignored_keys"]} == {
        ("name", "kept_saved_value"),
        ("city", "kept_saved_value"),
    }
    assert not _session(second).created_contact


def test_a_verified_customers_email_leaves_them_untouched_and_reveals_nothing(
    widget_factory, agent
):
    verified = ContactFactory(
        agent=agent,
        external_id="cust-1",
        name="Real Customer",
        email="vip@example.com",
        identity=Identity.VERIFIED,
        attributes={},
    )
    before = Contact.objects.filter(pk=verified.pk).values().get()
    attacker = widget_factory()
    response = attacker.identify({"email": "VIP@example.com", "name": "Mallory"})
    assert response.status_code == 200
    body = response.json()
    assert body["contact"]["id"] != str(verified.pk)
    assert body["contact"] == {
        "id": body["contact"]["id"],
        "name": "Mallory",
        "identity": "self_reported",
    }
    assert "Real Customer" not in response.content.decode()
    assert Contact.objects.filter(pk=verified.pk).values().get() == before
    assert not AuditEvent.objects.filter(contact_id=verified.pk).exists()

    # The next visitor with that email reuses the self-reported contact, never the verified.
    other = widget_factory()
    again = other.identify({"email": "vip@example.com", "phone": "+14155550123"}).json()
    assert again["contact"]["id"] == body["contact"]["id"]
    assert Contact.objects.filter(pk=verified.pk).values().get() == before
    assert Contact.objects.filter(agent=agent, email__iexact="vip@example.com").count() == 2


def test_a_phone_matches_when_no_email_is_given(widget_factory, agent):
    widget_factory().identify({"phone": "+14155550123", "name": "Pat"})
    response = widget_factory().identify({"phone": "(415) 555-0123", "name": "Someone"})
    assert Contact.objects.filter(agent=agent).count() == 1
    assert response.json()["contact"]["name"] == "Someone"
    assert Contact.objects.get(agent=agent).name == "Pat"


def test_a_name_alone_never_attaches_to_someone_elses_contact(widget_factory, agent):
    widget_factory().identify({"name": "John Smith", "email": "john@example.com"})
    widget_factory().identify({"name": "John Smith"})
    assert Contact.objects.filter(agent=agent, name="John Smith").count() == 2


def test_secure_and_misplaced_keys_in_custom_data_are_ignored_and_listed(widget, agent):
    AttributeFactory(agent=agent, key="plan", type="text", secure=True)
    AttributeFactory(agent=agent, key="city", type="text")
    response = widget.identify(
        {
            "email": "sam@example.com",
            "custom_data": {"plan": "enterprise", "city": "Oslo", "email": "x@example.com"},
        }
    )
    codes = {e["key"]: e["code"] for e in response.json()["ignored_keys"]}
    assert codes == {"plan": "secure_attribute", "email": "not_used"}
    contact = Contact.objects.get(agent=agent)
    assert contact.attributes == {"city": "Oslo"}
    assert contact.email == "sam@example.com"


def test_secure_attributes_stay_out_even_with_the_toggle_on(widget, agent):
    agent.create_attributes_from_unsigned = True
    agent.save()
    AttributeFactory(agent=agent, key="plan", type="text", secure=True)
    response = widget.identify({"name": "Sam", "custom_data": {"plan": "gold", "pet": "cat"}})
    assert {e["key"] for e in response.json()["ignored_keys"]} == {"plan"}
    assert Contact.objects.get(agent=agent).attributes == {"pet": "cat"}
    assert AttributeDefinition.objects.filter(agent=agent, key="pet", type="text").exists()


def test_bad_values_are_a_400_naming_each_field_and_write_nothing(widget, agent):
    AttributeFactory(agent=agent, key="seats", type="number")
    response = widget.identify({"email": "nope", "phone": "12", "custom_data": {"seats": "lots"}})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"email", "phone", "custom_data.seats"}
    assert not Contact.objects.filter(agent=agent).exists()
    assert not VisitorSession.objects.filter(agent=agent).exists()


@pytest.mark.parametrize(
    "body",
    [
        {"custom_data": ["a"]},
        {"custom_data": "plan=gold"},
        {"email": ["a@example.com"]},
        {"name": {"first": "Sam"}},
    ],
)
def test_wrong_types_are_a_400(widget, agent, body):
    response = widget.identify(body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not Contact.objects.filter(agent=agent).exists()


def test_blank_answers_create_no_contact(widget, agent):
    response = widget.identify({"email": "", "name": "  "})
    assert response.status_code == 200
    assert response.json()["contact"] is None
    assert not Contact.objects.filter(agent=agent).exists()


def test_a_new_email_from_a_visitor_attached_to_someone_elses_contact_makes_its_own(
    widget_factory, agent
):
    owner = widget_factory()
    owner.identify({"email": "sam@example.com", "name": "Sam"})
    visitor = widget_factory()
    visitor.identify({"email": "sam@example.com"})
    response = visitor.identify({"email": "kim@example.com", "name": "Kim"})
    sam = Contact.objects.get(agent=agent, email="sam@example.com")
    assert sam.name == "Sam"
    kim = Contact.objects.get(agent=agent, email="kim@example.com")
    assert response.json()["contact"] == {
        "id": str(kim.pk),
        "name": "Kim",
        "identity": "self_reported",
    }
    assert _session(visitor).created_contact


# --- A verified session and unsigned callers ------------------------------------------------------


def test_a_verified_visitor_keeps_its_identity_and_unsigned_data_is_not_written(widget, agent):
    widget.jwt(user_id="u-1", contact_attributes={"name": "Ada", "email": "ada@example.com"})
    contact = Contact.objects.get(agent=agent)
    events = AuditEvent.objects.count()
    response = widget.identify({"email": "eve@example.com", "name": "Eve"})
    body = response.json()
    assert body["contact"] == {"id": str(contact.pk), "name": "Ada", "identity": "verified"}
    assert {e["code"] for e in body["ignored_keys"]} == {"verified_visitor"}
    contact.refresh_from_db()
    assert (contact.name, contact.email) == ("Ada", "ada@example.com")
    assert AuditEvent.objects.count() == events
    assert Contact.objects.filter(agent=agent).count() == 1


def test_a_visitor_id_without_its_session_token_never_reaches_the_verified_contact(agent):
    victim = Widget(agent)
    victim.jwt(user_id="u-1", contact_attributes={"name": "Ada", "email": "ada@example.com"})
    verified = Contact.objects.get(agent=agent)
    before = Contact.objects.filter(pk=verified.pk).values().get()

    thief = Widget(agent)
    thief.visitor_id = victim.visitor_id  # learned the id, but not the session token
    anonymous = thief.identify({}).json()
    assert anonymous["contact"] is None
    assert "Ada" not in str(anonymous)

    self_reported = thief.identify({"name": "Mallory", "email": "ada@example.com"}).json()
    assert self_reported["contact"]["identity"] == "self_reported"
    assert self_reported["contact"]["id"] != str(verified.pk)
    verified_after = Contact.objects.filter(pk=verified.pk).values().get()
    assert verified_after == {**before, "last_seen_at": verified_after["last_seen_at"]}


def test_an_anonymous_identify_with_the_session_token_returns_the_verified_contact(widget, agent):
    widget.jwt(user_id="u-1", contact_attributes={"name": "Ada"})
    body = widget.identify({}).json()
    assert body["contact"]["name"] == "Ada"
    assert body["contact"]["identity"] == "verified"


def test_a_forged_or_foreign_session_token_is_no_proof(widget, agent, other_agent):
    widget.jwt(user_id="u-1", contact_attributes={"name": "Ada"})
    foreign = Widget(other_agent)
    foreign.identify({})
    response = widget.identify(
        {}, keep_token=False, HTTP_AUTHORIZATION=f"Bearer {foreign.session_token}"
    )
    assert response.json()["contact"] is None


def test_company_and_avatar_are_self_reported_values(widget, agent):
    response = widget.identify(
        {
            "email": "sam@example.com",
            "company": "  Acme Inc ",
            "avatar_url": "https://cdn.example.com/sam.png",
        }
    )
    assert response.status_code == 200
    assert response.json()["ignored_keys"] == []
    contact = Contact.objects.get(agent=agent)
    assert (contact.company, contact.avatar_url, contact.identity) == (
        "Acme Inc",
        "https://cdn.example.com/sam.png",
        Identity.SELF_REPORTED,
    )
    # The visitor that created the contact may correct them, like its name.
    widget.identify({"email": "sam@example.com", "company": "Acme"})
    assert Contact.objects.get(agent=agent).company == "Acme"


def test_company_and_avatar_only_fill_blanks_on_someone_elses_contact(widget_factory, agent):
    widget_factory().identify({"email": "sam@example.com", "company": "Acme"})
    response = widget_factory().identify(
        {
            "email": "sam@example.com",
            "company": "Mallory Ltd",
            "avatar_url": "https://cdn.example.com/sam.png",
        }
    )
    contact = Contact.objects.get(agent=agent)
    assert (contact.company, contact.avatar_url) == ("Acme", "https://cdn.example.com/sam.png")
    assert [(e["key"], e["code"]) for e in response.json()["ignored_keys"]] == [
        ("company", "kept_saved_value")
    ]


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:image/png;base64,AAAA", "/relative.png", "nope"]
)
def test_an_avatar_that_is_not_an_http_url_is_a_400_and_writes_nothing(widget, agent, url):
    response = widget.identify({"email": "sam@example.com", "avatar_url": url})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"avatar_url"}
    assert not Contact.objects.filter(agent=agent).exists()


def test_unsigned_company_never_changes_a_verified_contact(widget, agent):
    ContactFactory(
        agent=agent,
        external_id="u-1",
        email="sam@example.com",
        company="Acme",
        identity=Identity.VERIFIED,
    )
    widget.identify({"email": "sam@example.com", "company": "Mallory Ltd", "avatar_url": ""})
    verified = Contact.objects.get(agent=agent, external_id="u-1")
    assert (verified.company, verified.avatar_url) == ("Acme", "")
