"""POST /api/v1/contacts/{id}/identity-token: a customer's server mints the help-center
hand-off token, and identify's hand-off mode takes it exactly once."""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation

from config.wsgi import application
from contacts.models import AuditEvent, Contact, Identity
from identity.models import HandoffTokenUse, VisitorSession
from tests.factories import ContactFactory
from tests.helpers import error
from tests.identity.conftest import Widget

pytestmark = pytest.mark.django_db


def _url(contact_id) -> str:
    return f"/api/v1/contacts/{contact_id}/identity-token"


@pytest.fixture
def verified(agent) -> Contact:
    return ContactFactory(
        agent=agent, name="Ada Lovelace", external_id="u-ada", identity=Identity.VERIFIED
    )


def test_a_verified_contact_gets_a_token_that_signs_in_a_help_center_visitor_once(
    api, agent, verified
):
    response = api.post(_url(verified.pk))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"identity_token", "expires_in", "param"}
    assert body["param"] == "rapport_identity"
    assert body["expires_in"] == 120
    assert response["Cache-Control"] == "no-store"

    help_center = Widget(agent)  # a browser that never signed in
    help_center.identify({"email": "someone@example.com"})
    signed_in = help_center.identify({"identity_token": body["identity_token"]})
    assert signed_in.status_code == 200
    assert signed_in.json()["contact"] == {
        "id": str(verified.pk),
        "name": "Ada Lovelace",
        "identity": "verified",
    }
    session = VisitorSession.objects.get(agent=agent, visitor_id=help_center.visitor_id)
    assert session.contact_id == verified.pk

    replay = Widget(agent)
    refused = replay.identify({"identity_token": body["identity_token"]})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "identity_token_used"
    assert not VisitorSession.objects.filter(visitor_id=replay.visitor_id).exists()


def test_each_call_mints_a_new_token_and_records_it_in_the_contacts_history(api, verified):
    first = api.post(_url(verified.pk)).json()["identity_token"]
    second = api.post(_url(verified.pk)).json()["identity_token"]
    assert first != second
    events = AuditEvent.objects.filter(contact_id=verified.pk, channel="api")
    assert events.count() == 2
    event = events.first()
    assert event.actor_label.startswith("API key test")
    assert event.changes == {"identity_token": [None, "issued, single use, valid 120 s"]}
    # The history never holds the token itself.
    assert first not in json.dumps(list(events.values_list("changes", flat=True)))


def test_an_api_token_expires(api, agent, verified, settings):
    token = api.post(_url(verified.pk)).json()["identity_token"]
    settings.IDENTITY_HANDOFF_MAX_AGE_SECONDS = -1
    response = Widget(agent).identify({"identity_token": token})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "identity_token_expired"
    assert not HandoffTokenUse.objects.exists()


def test_the_expiry_it_announces_follows_the_setting(api, verified, settings):
    settings.IDENTITY_HANDOFF_MAX_AGE_SECONDS = 45
    assert api.post(_url(verified.pk)).json()["expires_in"] == 45


def test_an_api_token_only_works_for_its_own_agent(api, verified, other_agent):
    token = api.post(_url(verified.pk)).json()["identity_token"]
    response = Widget(other_agent).identify({"identity_token": token})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_identity_token"


def test_a_contact_deleted_after_the_token_was_minted_is_not_reached(api, agent, verified):
    token = api.post(_url(verified.pk)).json()["identity_token"]
    Contact.objects.filter(pk=verified.pk).update(deleted_at=timezone.now())
    response = Widget(agent).identify({"identity_token": token})
    assert response.json()["error"]["code"] == "invalid_identity_token"


@pytest.mark.parametrize("identity", [Identity.SELF_REPORTED, Identity.ANONYMOUS])
def test_an_unverified_contact_is_refused(api, agent, identity):
    contact = ContactFactory(agent=agent, email="lead@example.com", identity=identity)
    response = api.post(_url(contact.pk))
    assert response.status_code == 409
    refusal = error(response)
    assert refusal["code"] == "not_verified"
    assert "verified" in refusal["message"]
    assert not AuditEvent.objects.filter(contact_id=contact.pk).exists()


def test_another_agents_contact_or_an_unknown_id_is_not_found(api, other_agent, verified):
    foreign = ContactFactory(agent=other_agent, external_id="u-1", identity=Identity.VERIFIED)
    for contact_id in (foreign.pk, "00000000-0000-0000-0000-000000000000"):
        response = api.post(_url(contact_id))
        assert response.status_code == 404
        assert error(response)["code"] == "not_found"
    assert not AuditEvent.objects.filter(contact_id=foreign.pk).exists()


def test_a_deleted_contact_is_not_found(api, verified):
    Contact.objects.filter(pk=verified.pk).update(deleted_at=timezone.now())
    response = api.post(_url(verified.pk))
    assert response.status_code == 404
    assert error(response)["code"] == "not_found"
    assert not AuditEvent.objects.filter(contact_id=verified.pk).exists()


def test_it_needs_a_valid_api_key(verified):
    missing = Client().post(_url(verified.pk))
    assert missing.status_code == 401
    assert error(missing)["code"] == "unauthorized"
    wrong = Client(HTTP_AUTHORIZATION="Bearer rk_nope").post(_url(verified.pk))
    assert wrong.status_code == 401
    assert not AuditEvent.objects.filter(contact_id=verified.pk).exists()


def test_it_only_answers_post(api, verified):
    response = api.get(_url(verified.pk))
    assert response.status_code == 405
    assert error(response)["code"] == "method_not_allowed"


# --- Schema -------------------------------------------------------------------------------------


def test_the_schema_documents_the_endpoint_with_its_statuses_and_examples(db):
    schema = json.loads(Client().get("/api/v1/schema/?format=json").content)
    operation = schema["paths"]["/api/v1/contacts/{contact_id}/identity-token"]["post"]
    assert operation["operationId"] == "contacts_identity_token"
    assert operation["security"] == [{"ApiKey": []}]
    assert "requestBody" not in operation
    responses = operation["responses"]
    assert set(responses) == {"200", "401", "404", "409", "429", "503"}
    ok = responses["200"]["content"]["application/json"]
    body = schema["components"]["schemas"][ok["schema"]["$ref"].rsplit("/", 1)[1]]
    assert (
        set(body["properties"])
        == set(body["required"])
        == {
            "identity_token",
            "expires_in",
            "param",
        }
    )
    assert body["properties"]["expires_in"]["type"] == "integer"
    example = next(iter(ok["examples"].values()))["value"]
    assert set(example) == set(body["properties"])
    refused = responses["409"]["content"]["application/json"]
    assert refused["schema"] == {"$ref": "#/components/schemas/Error"}
    assert next(iter(refused["examples"].values()))["value"]["error"]["code"] == "not_verified"


fuzz_schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application).include(
    path_regex=r"/identity-token$"
)


@pytest.fixture
def _keep_connection():
    # Raw WSGI calls would close the test's database connection at the end of each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.usefixtures("_keep_connection")
@fuzz_schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_endpoint_honours_its_schema(case, key, agent, verified):
    # Half the valid ids reach a real contact, verified or not; a deliberately invalid id is
    # left alone (and must answer 404).
    lead = ContactFactory(agent=agent, email="lead@example.com", identity=Identity.SELF_REPORTED)
    if not (case.meta and case.meta.is_negative_at(ParameterLocation.PATH)):
        drawn = str(case.path_parameters.get("contact_id", ""))
        case.path_parameters["contact_id"] = str(
            verified.pk if drawn[-1:] in "02468ace" else lead.pk
        )
    case.call_and_validate(headers={"Authorization": f"Bearer {key.raw}"})
