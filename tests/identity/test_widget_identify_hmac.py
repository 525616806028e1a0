"""Identify with user_id + user_hash (SPEC 6, mode 2), and the attribute toggle and cap."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest

from attributes.models import AttributeDefinition
from contacts.models import AuditEvent, Contact
from identity import verification
from identity.models import VisitorSession
from tests.factories import AttributeFactory
from tests.identity.conftest import secret_of, user_hash
from workspaces.services import identity_secret_rotate

pytestmark = pytest.mark.django_db


def _nothing_written(agent) -> None:
    assert not Contact.objects.filter(agent=agent).exists()
    assert not VisitorSession.objects.filter(agent=agent).exists()
    assert not AuditEvent.objects.filter(agent=agent).exists()


def test_a_valid_hash_verifies_and_metadata_fills_fields_but_not_secure_attributes(widget, agent):
    AttributeFactory(agent=agent, key="plan", type="text", secure=True)
    AttributeFactory(agent=agent, key="company_size", type="number")
    response = widget.identify(
        {
            "user_id": "u-7",
            "user_hash": user_hash(agent, "u-7"),
            "user_metadata": {
                "name": "Grace Hopper",
                "email": "grace@example.com",
                "phone": "+14155550123",
                "company_size": "250",
                "plan": "enterprise",
            },
        }
    )
    assert response.status_code == 200
    body = response.json()
    assert body["contact"]["identity"] == "verified"
    assert body["ignored_keys"] == [
        {
            "key": "plan",
            "code": "secure_attribute",
            "reason": "Secure attribute: only a signed token's contact_attributes may write it.",
        }
    ]
    contact = Contact.objects.get(agent=agent)
    assert (contact.external_id, contact.name, contact.email, contact.phone) == (
        "u-7",
        "Grace Hopper",
        "grace@example.com",
        "+14155550123",
    )
    assert contact.attributes == {"company_size": 250}
    assert contact.identity_source == "hmac"
    assert AuditEvent.objects.get(contact_id=contact.pk).channel == "hmac"


def test_a_numeric_user_id_is_hashed_as_its_digits(widget, agent):
    response = widget.identify({"user_id": 42, "user_hash": user_hash(agent, "42")})
    assert response.status_code == 200
    assert Contact.objects.get(agent=agent).external_id == "42"


def test_an_upper_case_hash_is_accepted(widget, agent):
    response = widget.identify({"user_id": "u-1", "user_hash": user_hash(agent, "u-1").upper()})
    assert response.status_code == 200


def test_the_hash_is_compared_in_constant_time(widget, agent, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(verification.hmac, "compare_digest", spy)
    widget.identify({"user_id": "u-1", "user_hash": "0" * 64})
    assert calls, "user_hash must be compared with hmac.compare_digest"


HMAC_REJECTIONS = {
    "wrong hash": ({"user_id": "u-1", "user_hash": "0" * 64}, "invalid_signature"),
    "hash of another user": (
        lambda a: {"user_id": "u-1", "user_hash": user_hash(a, "u-2")},
        "invalid_signature",
    ),
    "hash with a wrong secret": (
        {"user_id": "u-1", "user_hash": hmac.new(b"x" * 40, b"u-1", hashlib.sha256).hexdigest()},
        "invalid_signature",
    ),
    "non-ascii hash": ({"user_id": "u-1", "user_hash": "é" * 64}, "invalid_signature"),
    "hash is a number": ({"user_id": "u-1", "user_hash": 1234}, "invalid_signature"),
    "no hash": ({"user_id": "u-1"}, "missing_user_hash"),
    "empty hash": ({"user_id": "u-1", "user_hash": ""}, "missing_user_hash"),
    "no user_id": ({"user_hash": "0" * 64}, "missing_user_id"),
    "user_id list": ({"user_id": ["u-1"], "user_hash": "0" * 64}, "invalid_user_id"),
    "user_id float": ({"user_id": 1.5, "user_hash": "0" * 64}, "invalid_user_id"),
    "user_id boolean": ({"user_id": True, "user_hash": "0" * 64}, "invalid_user_id"),
    "user_id with control characters": (
        {"user_id": "u\x00", "user_hash": "0" * 64},
        "invalid_user_id",
    ),
    # Correctly hashed, but the stored id would differ from the signed one.
    "user_id with a leading space": (
        lambda a: {"user_id": " u-1", "user_hash": user_hash(a, " u-1")},
        "invalid_user_id",
    ),
    "user_id with a trailing space": (
        lambda a: {"user_id": "u-1 ", "user_hash": user_hash(a, "u-1 ")},
        "invalid_user_id",
    ),
}


@pytest.mark.parametrize("case", list(HMAC_REJECTIONS))
def test_a_bad_hash_is_refused_with_its_code_and_writes_nothing(widget, agent, case):
    body, code = HMAC_REJECTIONS[case]
    if callable(body):
        body = body(agent)
    response = widget.identify({**body, "user_metadata": {"name": "Mallory"}})
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == code
    _nothing_written(agent)


def test_user_metadata_must_be_an_object(widget, agent):
    response = widget.identify(
        {"user_id": "u-1", "user_hash": user_hash(agent, "u-1"), "user_metadata": "Ada"}
    )
    assert response.status_code == 400
    assert "user_metadata" in response.json()["error"]["fields"]
    _nothing_written(agent)


def test_a_hash_made_with_the_previous_secret_works_until_the_grace_period_ends(
    widget, agent, clock_moves
):
    old = secret_of(agent)
    old_hash = hmac.new(old.encode(), b"u-1", hashlib.sha256).hexdigest()
    identity_secret_rotate(agent=agent, grace_seconds=600)
    assert widget.identify({"user_id": "u-1", "user_hash": old_hash}).status_code == 200
    assert (
        widget.identify({"user_id": "u-1", "user_hash": user_hash(agent, "u-1")}).status_code == 200
    )
    clock_moves(timedelta(seconds=601))
    response = widget.identify({"user_id": "u-1", "user_hash": old_hash})
    assert response.json()["error"]["code"] == "invalid_signature"


# --- Unknown keys: new attributes from signed identifies (on by default) and the cap -----------


def _hmac_identify(widget, agent, metadata):
    return widget.identify(
        {"user_id": "u-1", "user_hash": user_hash(agent, "u-1"), "user_metadata": metadata}
    )


def test_unknown_keys_are_ignored_and_listed_when_the_agent_turned_creation_off(widget, agent):
    agent.create_attributes_from_signed = False
    agent.save()
    response = _hmac_identify(widget, agent, {"name": "Ada", "favourite_color": "teal"})
    assert response.json()["ignored_keys"] == [
        {
            "key": "favourite_color",
            "code": "unknown_attribute",
            "reason": "No attribute has this key, and new attributes from signed identifies "
            "are turned off (Settings → Identity verification).",
        }
    ]
    assert not AttributeDefinition.objects.filter(agent=agent).exists()
    assert Contact.objects.get(agent=agent).attributes == {}


def test_by_default_unknown_signed_keys_become_attributes_of_the_inferred_type(widget, agent):
    response = _hmac_identify(
        widget,
        agent,
        {
            "seats": 12,
            "trial": "yes",
            "renewal": "2025-01-31",
            "homepage": "https://example.com/",
            "nickname": "Countess",
            "Bad Key": "x",
            "nested": {"a": 1},
        },
    )
    assert response.status_code == 200
    types = dict(AttributeDefinition.objects.filter(agent=agent).values_list("key", "type"))
    assert types == {
        "seats": "number",
        "trial": "boolean",
        "renewal": "date",
        "homepage": "url",
        "nickname": "text",
    }
    assert Contact.objects.get(agent=agent).attributes == {
        "seats": 12,
        "trial": True,
        "renewal": "2025-01-31",
        "homepage": "https://example.com/",
        "nickname": "Countess",
    }
    codes = {e["key"]: e["code"] for e in response.json()["ignored_keys"]}
    assert codes == {"Bad Key": "invalid_key", "nested": "unusable_value"}


def test_new_attributes_stop_at_the_cap_of_attributes_per_agent(widget, agent, settings):
    assert settings.MAX_ATTRIBUTES_PER_AGENT == 100
    for index in range(98):
        AttributeFactory(agent=agent, key=f"existing_{index}")
    response = _hmac_identify(widget, agent, {"alpha": "a", "beta": "b", "gamma": "c"})
    assert AttributeDefinition.objects.filter(agent=agent).count() == 100
    attributes = Contact.objects.get(agent=agent).attributes
    assert set(attributes) == {"alpha", "beta"}
    assert response.json()["ignored_keys"] == [
        {
            "key": "gamma",
            "code": "attribute_limit",
            "reason": "The agent already has 100 attributes, the limit.",
        }
    ]


def test_unknown_keys_in_a_signed_token_become_attributes_too(widget, agent):
    response = widget.jwt(user_id="u-1", contact_attributes={"tier": "gold"})
    assert response.json()["ignored_keys"] == []
    assert Contact.objects.get(agent=agent).attributes == {"tier": "gold"}
    assert AttributeDefinition.objects.filter(agent=agent, key="tier", type="text").exists()


def test_unsigned_custom_data_does_not_create_attributes_by_default(widget, agent):
    response = widget.identify({"email": "sam@example.com", "custom_data": {"tier": "gold"}})
    assert response.json()["ignored_keys"] == [
        {
            "key": "tier",
            "code": "unknown_attribute",
            "reason": "No attribute has this key; unsigned custom_data does not create "
            "attributes unless that is turned on (Settings → Identity verification).",
        }
    ]
    assert not AttributeDefinition.objects.filter(agent=agent).exists()
    assert Contact.objects.get(agent=agent).attributes == {}
