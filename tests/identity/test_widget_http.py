"""The identify endpoint as HTTP: CORS and preflight, JSON errors for bad input, no cookies."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from contacts.models import AuditEvent, Contact
from identity.models import VisitorSession
from tests.factories import ContactFactory
from tests.identity.conftest import make_jwt, new_visitor

pytestmark = pytest.mark.django_db


def _url(agent) -> str:
    return reverse("identity:identify", kwargs={"agent_public_id": agent.public_id})


def _post(agent, body, **extra):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return Client().post(_url(agent), data, content_type="application/json", **extra)


def _assert_cors(response) -> None:
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    assert "Content-Type" in response["Access-Control-Allow-Headers"]
    assert response["Access-Control-Expose-Headers"] == "Retry-After"
    assert response["Cache-Control"] == "no-store"


def test_a_preflight_from_any_origin_is_allowed(agent):
    response = Client().options(
        _url(agent),
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, authorization",
    )
    assert response.status_code == 204
    _assert_cors(response)
    assert "POST" in response["Access-Control-Allow-Methods"]


def test_answers_and_errors_carry_cors_headers_and_set_no_cookie(agent):
    ok = _post(agent, {"visitor_id": new_visitor()}, HTTP_ORIGIN="https://shop.example")
    assert ok.status_code == 200
    _assert_cors(ok)
    assert not ok.cookies
    refused = _post(agent, {"visitor_id": new_visitor(), "token": "x"})
    assert refused.status_code == 401
    _assert_cors(refused)


def test_a_cross_origin_post_needs_no_csrf_token(agent):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        _url(agent),
        json.dumps({"visitor_id": new_visitor()}),
        content_type="application/json",
        HTTP_ORIGIN="https://shop.example",
    )
    assert response.status_code == 200


def test_other_methods_are_refused_as_json(agent):
    response = Client().get(_url(agent))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response["Allow"] == "POST, OPTIONS"
    _assert_cors(response)
    assert Client().put(_url(agent)).status_code == 405


def test_an_unknown_agent_is_a_json_404(db):
    response = Client().post(
        reverse("identity:identify", kwargs={"agent_public_id": "ag_nope"}),
        "{}",
        content_type="application/json",
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    _assert_cors(response)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'"visitor"', "invalid_json"),
        (b"null", "invalid_json"),
        (b"{}", "validation_error"),
        (b'{"visitor_id": 12}', "validation_error"),
        (b'{"visitor_id": ""}', "validation_error"),
        (b'{"visitor_id": "a b"}', "validation_error"),
        (b'{"visitor_id": "tab\\there"}', "validation_error"),
        (json.dumps({"visitor_id": "v" * 129}).encode(), "validation_error"),
    ],
)
def test_malformed_bodies_are_a_400_and_write_nothing(agent, body, code):
    response = _post(agent, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    if code == "validation_error":
        assert list(error["fields"]) == ["visitor_id"]
    assert not VisitorSession.objects.exists()


@pytest.mark.parametrize(
    ("metadata", "code", "says"),
    [
        ('{"cart": NaN}', "invalid_json", "NaN"),
        ('{"cart": -Infinity}', "invalid_json", "Infinity"),
        ('{"cart": 1e400}', "invalid_json", "infinity"),
        ('{"page": "a\\u0000b"}', "validation_error", "NUL"),
        ('{"pa\\u0000ge": "b"}', "validation_error", "NUL"),
        ('{"nested": {"deep": ["x", "\\u0000"]}}', "validation_error", "NUL"),
    ],
)
def test_values_json_allows_but_no_database_stores_are_a_400_and_write_nothing(
    agent, metadata, code, says
):
    """NaN, Infinity and NUL characters parse (Python's json accepts the first two) but no
    JSON column or text can hold them: a signed identify carrying them in user_metadata,
    which the signature does not cover, must be refused before anything is written for a
    known user (not answered 500 after their last-seen was marked)."""
    contact = ContactFactory(agent=agent, external_id="u-1", last_seen_at=None)
    token = make_jwt(agent, user_id="u-1")
    visitor = new_visitor()
    assert _post(agent, {"visitor_id": visitor, "token": token}).status_code == 200
    Contact.objects.filter(pk=contact.pk).update(last_seen_at=None)
    body = f'{{"visitor_id": "{visitor}", "token": "{token}", "user_metadata": {metadata}}}'
    response = _post(agent, body.encode())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert says in error["message"]
    if code == "validation_error":
        assert list(error["fields"]) == ["user_metadata"]
    contact.refresh_from_db()
    assert contact.last_seen_at is None
    assert VisitorSession.objects.get(visitor_id=visitor).context is None


@pytest.mark.parametrize("size", [70_000, 3_000_000])
def test_an_oversized_body_is_a_json_413(agent, size):
    body = json.dumps({"visitor_id": new_visitor(), "name": "x" * size})
    response = _post(agent, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not VisitorSession.objects.exists()


def test_keys_that_the_mode_does_not_read_are_listed_as_not_used(agent):
    body = _post(
        agent,
        {
            "visitor_id": new_visitor(),
            "token": make_jwt(agent, user_id="u-1"),
            "email": "someone@example.com",
            "custom_data": {"plan": "x"},
        },
    ).json()
    assert [(e["key"], e["code"]) for e in body["ignored_keys"]] == [
        ("custom_data", "not_used"),
        ("email", "not_used"),
    ]
    assert Contact.objects.get(agent=agent).email == ""


@pytest.mark.parametrize(
    "body",
    [
        {"email": "\x00@example.com"},
        {"name": "x" * 300},
        {"phone": "+1" + "9" * 70},
        {"email": "a@" + "b" * 300 + ".com"},
        {"user_metadata": None, "user_id": None},
        {"token": None},
        {"token": {"alg": "none"}},
        {"identity_token": 5},
    ],
)
def test_hostile_values_get_a_4xx_never_a_500(agent, body):
    response = _post(agent, {"visitor_id": new_visitor(), **body})
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"]


def test_a_verified_identify_of_a_known_visitor_runs_a_fixed_number_of_queries(
    agent, django_assert_num_queries
):
    visitor = new_visitor()
    body = {"visitor_id": visitor, "token": make_jwt(agent, user_id="u-1")}
    assert _post(agent, body).status_code == 200
    body["token"] = make_jwt(agent, user_id="u-1", contact_attributes={"name": "Ada"})
    # the rate counters (one statement), the contact marked seen and locked (one UPDATE),
    # its update, audit, the webhook subscriptions, session upsert (which also relaxes the
    # commit on PostgreSQL); plus
    # two savepoints and their releases (the upsert takes none of its own inside identify's
    # transaction). The agent and its secrets are kept from the first call;
    # no attribute values: the schema is not read; no email: no probe. On PostgreSQL the
    # returning visitor's one statement comes first and finds a change to write.
    with django_assert_num_queries(11 if connection.vendor == "postgresql" else 10):
        assert _post(agent, body).status_code == 200
    assert Contact.objects.get(agent=agent, external_id="u-1").name == "Ada"


def test_a_returning_verified_visitor_with_nothing_new_writes_only_last_seen(
    agent, django_assert_num_queries
):
    """The widget identifies on every page view: the common case writes only last-seen."""
    visitor = new_visitor()
    claims = {"name": "Ada", "email": "ada@example.com", "plan": "pro"}
    body = {
        "visitor_id": visitor,
        "token": make_jwt(agent, user_id="u-1", contact_attributes=claims),
    }
    assert _post(agent, body).status_code == 200
    contact = Contact.objects.get(agent=agent, external_id="u-1")
    first_seen = contact.last_seen_at
    session = VisitorSession.objects.get(agent=agent, visitor_id=visitor)

    # the rate counters (one statement), schema (the token carries an attribute), then on
    # PostgreSQL one statement (identity.sql.RETURNING_VISITOR: the contact marked seen, the
    # session upserted, the same-email probe, a relaxed commit); on SQLite the contact marked
    # seen and locked (one UPDATE), session upsert, same-email probe, one savepoint and its
    # release (the upsert takes none of its own inside identify's transaction).
    # Nothing changed: no contact update, no audit, no session update; the agent and its
    # secrets are kept from the first call.
    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 7):
        response = _post(agent, body)
    assert response.status_code == 200
    assert response.json()["contact"]["id"] == str(contact.pk)
    contact.refresh_from_db()
    assert contact.last_seen_at > first_seen
    assert AuditEvent.objects.filter(contact_id=contact.pk).count() == 1
    session.refresh_from_db()
    assert session.contact_id == contact.pk
    assert session.last_seen_at >= contact.last_seen_at - timedelta(seconds=1)


@pytest.mark.parametrize("where", ["agent lookup", "identify"])
def test_a_lost_database_is_a_json_503_with_cors(agent, monkeypatch, where):
    from django.db import OperationalError

    from identity import services
    from workspaces import agent_cache

    def lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    if where == "agent lookup":
        agent_cache.clear()
        monkeypatch.setattr("identity.widget_http.cached_agent", lost)
    else:
        monkeypatch.setattr(services, "identify", lost)
    response = _post(agent, {"visitor_id": new_visitor(), "email": "a@example.com"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"
    _assert_cors(response)
    assert "server closed" not in response.content.decode()
