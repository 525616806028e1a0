"""Identify with a signed JWT (SPEC 6, mode 1): HS256 only, exp required, nothing written
when anything is wrong."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from contacts.models import AuditEvent, Contact
from identity.models import VisitorSession
from identity.sessions import session_token_verify
from tests.factories import AttributeFactory, ContactFactory
from tests.identity.conftest import Widget, make_jwt, secret_of
from workspaces.services import identity_secret_rotate

pytestmark = pytest.mark.django_db


def _nothing_written(agent) -> None:
    assert not Contact.objects.filter(agent=agent).exists()
    assert not VisitorSession.objects.filter(agent=agent).exists()
    assert not AuditEvent.objects.filter(agent=agent).exists()


def test_a_signed_token_creates_a_verified_contact_with_secure_attributes(widget, agent):
    AttributeFactory(agent=agent, key="plan", type="text", secure=True)
    AttributeFactory(agent=agent, key="seats", type="number")
    response = widget.jwt(
        user_id="u-42",
        contact_attributes={
            "name": "Ada Lovelace",
            "email": "Ada@Example.COM",
            "phone": "+44 20 7946 0958",
            "plan": "enterprise",
            "seats": "12",
        },
    )
    assert response.status_code == 200
    body = response.json()
    contact = Contact.objects.get(agent=agent)
    assert body["contact"] == {
        "id": str(contact.pk),
        "name": "Ada Lovelace",
        "identity": "verified",
    }
    assert body["ignored_keys"] == []
    assert "session_context" not in body
    assert contact.external_id == "u-42"
    assert contact.email == "Ada@example.com"
    assert contact.phone == "+442079460958"
    assert contact.attributes == {"plan": "enterprise", "seats": 12}
    assert contact.identity_source == "jwt"
    assert contact.verified_at is not None
    assert contact.first_seen_at is not None
    assert contact.last_seen_at is not None
    event = AuditEvent.objects.get(contact_id=contact.pk)
    assert (event.action, event.channel, event.actor_label) == (
        "created",
        "jwt",
        "identify (signed JWT)",
    )
    session = session_token_verify(token=body["session_token"], agent=agent)
    assert session.visitor_id == widget.visitor_id
    assert session.contact_id == contact.pk


def test_a_numeric_user_id_is_stored_as_a_string_and_finds_the_same_contact(widget, agent):
    first = widget.jwt(user_id=1001, contact_attributes={"name": "Grace"}).json()
    second = widget.jwt(user_id="1001", contact_attributes={"name": "Grace Hopper"}).json()
    assert first["contact"]["id"] == second["contact"]["id"]
    contact = Contact.objects.get(agent=agent)
    assert contact.external_id == "1001"
    assert contact.name == "Grace Hopper"  # a signed token is trusted to overwrite


def test_user_metadata_beside_the_token_is_returned_as_session_context_and_not_stored(
    widget, agent
):
    AttributeFactory(agent=agent, key="plan", type="text")
    response = widget.identify(
        {
            "token": make_jwt(agent, user_id="u-1"),
            "user_metadata": {"plan": "free", "cart_total": 99.5, "page": "/checkout"},
        }
    )
    body = response.json()
    assert body["session_context"] == {"plan": "free", "cart_total": 99.5, "page": "/checkout"}
    contact = Contact.objects.get(agent=agent)
    assert contact.attributes == {}


def test_the_exp_leeway_is_sixty_seconds(widget, agent):
    assert widget.jwt(user_id="u-1", exp_in=-30).status_code == 200
    late = widget.jwt(user_id="u-2", exp_in=-90)
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "token_expired"


def _unsigned(payload: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def _tampered(agent) -> str:
    header, _payload, signature = make_jwt(agent, user_id="u-1").split(".")
    forged = base64.urlsafe_b64encode(
        json.dumps({"user_id": "admin", "exp": int(time.time()) + 300}).encode()
    )
    return f"{header}.{forged.rstrip(b'=').decode()}.{signature}"


def _rs256() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode({"user_id": "u-1", "exp": int(time.time()) + 300}, key, algorithm="RS256")


REJECTIONS = {
    "alg none": (
        lambda a: _unsigned({"user_id": "u-1", "exp": int(time.time()) + 300}),
        "algorithm_not_allowed",
    ),
    "HS512": (
        lambda a: make_jwt(secret=secret_of(a) * 2, algorithm="HS512", user_id="u-1"),
        "algorithm_not_allowed",
    ),
    "RS256": (lambda a: _rs256(), "algorithm_not_allowed"),
    "wrong secret": (lambda a: make_jwt(secret="s" * 48, user_id="u-1"), "invalid_signature"),
    "tampered payload": (_tampered, "invalid_signature"),
    "expired": (lambda a: make_jwt(a, user_id="u-1", exp_in=-3600), "token_expired"),
    "no exp": (lambda a: make_jwt(a, user_id="u-1", exp_in=None), "missing_exp"),
    "no user_id": (lambda a: make_jwt(a, contact_attributes={"name": "X"}), "missing_user_id"),
    "empty user_id": (lambda a: make_jwt(a, user_id=""), "missing_user_id"),
    "user_id object": (lambda a: make_jwt(a, user_id={"id": 1}), "invalid_user_id"),
    "user_id boolean": (lambda a: make_jwt(a, user_id=True), "invalid_user_id"),
    "exp not a number": (lambda a: make_jwt(a, user_id="u-1", exp="tomorrow"), "invalid_claims"),
    "exp a numeric string": (
        lambda a: make_jwt(a, user_id="u-1", exp=str(int(time.time()) + 300)),
        "invalid_claims",
    ),
    "exp infinite": (lambda a: make_jwt(a, user_id="u-1", exp=float("inf")), "invalid_claims"),
    "exp in year 9999": (
        lambda a: make_jwt(a, user_id="u-1", exp=253402300799),
        "token_lifetime_too_long",
    ),
    "exp 2^64": (lambda a: make_jwt(a, user_id="u-1", exp=2**64), "token_lifetime_too_long"),
    "exp two days ahead": (
        lambda a: make_jwt(a, user_id="u-1", exp_in=2 * 86400),
        "token_lifetime_too_long",
    ),
    "user_id with a leading space": (lambda a: make_jwt(a, user_id=" u-1"), "invalid_user_id"),
    "user_id with a trailing space": (lambda a: make_jwt(a, user_id="u-1 "), "invalid_user_id"),
    "user_id with a newline": (lambda a: make_jwt(a, user_id="u-1\n"), "invalid_user_id"),
    "user_id with a control character": (
        lambda a: make_jwt(a, user_id="u\x07-1"),
        "invalid_user_id",
    ),
    "not before in the future": (
        lambda a: make_jwt(a, user_id="u-1", nbf=int(time.time()) + 3600),
        "token_not_yet_valid",
    ),
    "garbage": (lambda a: "not-a-jwt", "malformed_token"),
    "three garbage parts": (lambda a: "a.b.c", "malformed_token"),
    "empty string": (lambda a: "", "malformed_token"),
    "a number": (lambda a: 12345, "malformed_token"),
    "too long": (lambda a: "a" * 9000, "malformed_token"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_a_bad_token_is_refused_with_its_code_and_writes_nothing(widget, agent, case):
    build, code = REJECTIONS[case]
    response = widget.identify({"token": build(agent)})
    assert response.status_code == 401, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    _nothing_written(agent)


def test_an_expired_token_with_a_wrong_signature_says_only_invalid_signature(widget, agent):
    # Whoever forged it must not learn anything about the token's other claims.
    response = widget.identify({"token": make_jwt(secret="s" * 48, user_id="u", exp_in=-3600)})
    assert response.json()["error"]["code"] == "invalid_signature"


def test_a_bad_token_leaves_an_identified_visitor_as_it_was(widget, agent):
    widget.jwt(user_id="u-1", contact_attributes={"name": "Ada"})
    contact = Contact.objects.get(agent=agent)
    events = AuditEvent.objects.count()
    response = widget.identify({"token": make_jwt(secret="s" * 48, user_id="u-2")})
    assert response.status_code == 401
    assert Contact.objects.filter(agent=agent).count() == 1
    assert AuditEvent.objects.count() == events
    session = VisitorSession.objects.get(agent=agent)
    assert session.contact_id == contact.pk


def test_invalid_contact_attributes_are_a_400_naming_the_field_and_write_nothing(widget, agent):
    AttributeFactory(agent=agent, key="seats", type="number")
    response = widget.jwt(
        user_id="u-1", contact_attributes={"email": "not-an-email", "seats": "many"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"contact_attributes.email", "contact_attributes.seats"}
    assert "number" in error["fields"]["contact_attributes.seats"][0]
    _nothing_written(agent)


@pytest.mark.parametrize("value", [["a"], "name=Ada", 3])
def test_contact_attributes_must_be_an_object(widget, agent, value):
    response = widget.jwt(user_id="u-1", contact_attributes=value)
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "contact_attributes": ["contact_attributes must be an object of fields and attribute keys."]
    }
    _nothing_written(agent)


def test_reserved_fields_are_listed_not_written_and_new_keys_become_attributes(widget, agent):
    response = widget.jwt(
        user_id="u-1",
        contact_attributes={"external_id": "someone-else", "tags": ["vip"], "shoe_size": 44},
    )
    body = response.json()
    codes = {entry["key"]: entry["code"] for entry in body["ignored_keys"]}
    assert codes == {"external_id": "reserved", "tags": "reserved"}
    contact = Contact.objects.get(agent=agent)
    assert contact.external_id == "u-1"
    assert contact.attributes == {"shoe_size": 44}


def test_with_creation_turned_off_new_keys_are_listed_not_written(widget, agent):
    agent.create_attributes_from_signed = False
    agent.save()
    response = widget.jwt(user_id="u-1", contact_attributes={"shoe_size": 44})
    assert [e["code"] for e in response.json()["ignored_keys"]] == ["unknown_attribute"]
    assert Contact.objects.get(agent=agent).attributes == {}


def test_a_soft_deleted_contact_comes_back_when_its_user_identifies(widget, agent):
    contact = ContactFactory(agent=agent, external_id="u-1", deleted_at=timezone.now())
    response = widget.jwt(user_id="u-1")
    assert response.json()["contact"]["id"] == str(contact.pk)
    contact.refresh_from_db()
    assert contact.deleted_at is None


def test_the_previous_secret_verifies_only_during_the_grace_period(widget, agent, clock_moves):
    old_secret = secret_of(agent)
    identity_secret_rotate(agent=agent, grace_seconds=3600)
    assert secret_of(agent) != old_secret
    assert widget.jwt(user_id="new", secret=None).status_code == 200
    assert widget.identify({"token": make_jwt(secret=old_secret, user_id="old")}).status_code == 200

    # An hour later (the secrets this process keeps hold expiry times, not verdicts).
    clock_moves(timedelta(seconds=3601))
    late = widget.identify({"token": make_jwt(secret=old_secret, user_id="late")})
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "invalid_signature"
    assert not Contact.objects.filter(agent=agent, external_id="late").exists()


def test_another_agents_secret_does_not_verify(widget, agent, other_agent):
    response = widget.identify({"token": make_jwt(other_agent, user_id="u-1")})
    assert response.json()["error"]["code"] == "invalid_signature"
    _nothing_written(agent)


def test_a_token_may_live_up_to_the_configured_lifetime(widget, agent, settings):
    assert widget.jwt(user_id="u-1", exp_in=23 * 3600).status_code == 200
    settings.IDENTITY_TOKEN_MAX_LIFETIME_SECONDS = 3600
    response = widget.jwt(user_id="u-1", exp_in=2 * 3600)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_lifetime_too_long"
    assert "3600 s" in response.json()["error"]["message"]


def test_a_signed_id_with_whitespace_never_reaches_the_trimmed_contact(widget, agent):
    victim = widget.jwt(user_id="victim-1").json()["contact"]["id"]
    for spaced in (" victim-1", "victim-1 ", "\tvictim-1"):
        attacker = Widget(agent)
        response = attacker.jwt(user_id=spaced)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_user_id"
    assert list(Contact.objects.filter(agent=agent).values_list("pk", flat=True)) == [
        uuid.UUID(victim)
    ]
