"""/api/v1/webhooks/: register, read, change, rotate, test, deliveries and redelivery."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from tests.helpers import error
from tests.webhooks.receiver import Reply
from webhooks import relay
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhooks/"


def create(api, **body):
    return api.post(URL, {"url": "https://hooks.example.com/rapport", "events": ["*"], **body})


def test_registering_returns_the_secret_once(api, agent):
    response = create(
        api, description="  CRM   sync ", events=["contact.updated", "contact.created"]
    )
    assert response.status_code == 201
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["contact.created", "contact.updated"]
    assert body["description"] == "CRM sync"
    assert body["enabled"] is True
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.agent_id == agent.pk
    assert body["secret"] not in endpoint.secret_encrypted

    listed = api.get(URL).json()["results"]
    assert [e["id"] for e in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in api.get(f"{URL}{body['id']}/").json()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"url": "ftp://x.example.com/"}, "url", "http:// or https://"),
        ({"url": ""}, "url", ""),
        ({"events": []}, "events", ""),
        ({"events": ["contact.exploded"]}, "events[0]", "not a valid choice"),
        ({"events": "contact.created"}, "events", ""),
        ({"shout": True}, "shout", "Unknown field"),
        ({"description": "x" * 300}, "description", ""),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(api, body, field, message):
    response = create(api, **body)
    assert response.status_code == 400
    fields = error(response)["fields"]
    assert field in fields
    assert message in " ".join(fields[field])
    assert not WebhookEndpoint.objects.exists()


def test_private_targets_are_refused_when_private_networks_are_off(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    for url in ("http://169.254.169.254/latest/", "http://10.0.0.1/x", "http://127.0.0.1:8000/"):
        response = create(api, url=url)
        assert response.status_code == 400, url
        assert "private, loopback or link-local" in error(response)["fields"]["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_https_is_required_in_production(api, settings):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    response = create(api, url="http://hooks.example.com/x")
    assert response.status_code == 400
    assert "https://" in error(response)["fields"]["url"][0]


def test_an_agent_has_a_limited_number_of_endpoints(api, settings):
    settings.WEBHOOK_MAX_ENDPOINTS = 2
    assert create(api).status_code == 201
    assert create(api).status_code == 201
    response = create(api)
    assert response.status_code == 409
    assert "remove one first" in error(response)["message"]
    assert WebhookEndpoint.objects.count() == 2


def test_patch_changes_only_what_is_sent_and_pauses(api):
    endpoint_id = create(api, description="CRM").json()["id"]
    response = api.patch(
        f"{URL}{endpoint_id}/", {"events": ["contact.deleted"], "enabled": False}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["events"], body["enabled"], body["description"]) == (
        ["contact.deleted"],
        False,
        "CRM",
    )
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert endpoint.disabled_at is not None
    assert endpoint.disabled_reason == ""
    bad = api.patch(f"{URL}{endpoint_id}/", {"url": "gopher://x"}, format="json")
    assert bad.status_code == 400
    assert WebhookEndpoint.objects.get(pk=endpoint_id).url == "https://hooks.example.com/rapport"


def test_delete_removes_the_endpoint_and_its_log(api, agent):
    endpoint_id = create(api).json()["id"]
    api.post("/api/v1/contacts/", {"name": "Ada"}, format="json")
    assert WebhookDelivery.objects.filter(endpoint_id=endpoint_id).count() == 1
    assert api.delete(f"{URL}{endpoint_id}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert api.get(f"{URL}{endpoint_id}/").status_code == 404


def test_another_agents_endpoints_answer_404(api, other_api):
    endpoint_id = create(api).json()["id"]
    assert other_api.get(URL).json()["results"] == []
    for method, path in (
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "rotate-secret/"),
        ("post", "test/"),
        ("get", "deliveries/"),
    ):
        response = getattr(other_api, method)(f"{URL}{endpoint_id}/{path}", {}, format="json")
        assert response.status_code == 404, (method, path)
    assert WebhookEndpoint.objects.get(pk=endpoint_id).enabled is True


def test_rotating_returns_a_new_secret_and_both_sign_for_a_while(api, receiver):
    created = create(api, url=receiver.url).json()
    rotated = api.post(f"{URL}{created['id']}/rotate-secret/")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != created["secret"]
    assert rotated.json()["previous_secret_expires_at"]
    assert api.get(f"{URL}{created['id']}/").json()["secret_rotation_ends_at"]

    tested = api.post(f"{URL}{created['id']}/test/")
    assert tested.status_code == 200
    got = receiver.requests[-1]
    for secret in (created["secret"], new):
        assert Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.test"


def test_the_test_event_answers_with_the_attempt(api, receiver):
    endpoint_id = create(api, url=receiver.url).json()["id"]
    receiver.then(Reply(500, body=b"down for maintenance"))
    body = api.post(f"{URL}{endpoint_id}/test/").json()
    assert (body["event_type"], body["status"], body["attempts"]) == ("webhook.test", "pending", 1)
    assert (body["response_status"], body["response_body"]) == (500, "down for maintenance")
    assert body["next_attempt_at"]
    assert body["payload"]["data"]["endpoint"]["id"] == endpoint_id
    assert body["message_id"] == receiver.requests[0].headers["webhook-id"]


def test_deliveries_are_listed_newest_first_page_by_page(api, receiver):
    endpoint_id = create(api, url=receiver.url).json()["id"]
    for name in ("Ada", "Grace", "Linus"):
        api.post("/api/v1/contacts/", {"name": name}, format="json")
    relay.deliver_due()
    first = api.get(f"{URL}{endpoint_id}/deliveries/", {"page_size": 2}).json()
    names = [d["payload"]["data"]["contact"]["name"] for d in first["results"]]
    assert names == ["Linus", "Grace"]
    assert {d["status"] for d in first["results"]} == {"succeeded"}
    assert first["results"][0]["response_status"] == 204
    second = api.get(first["next"]).json()
    assert [d["payload"]["data"]["contact"]["name"] for d in second["results"]] == ["Ada"]
    assert second["next"] is None
    bad = api.get(f"{URL}{endpoint_id}/deliveries/", {"cursor": "nonsense"})
    assert bad.status_code == 400
    assert "cursor" in error(bad)["fields"]


def test_redelivering_queues_the_same_message_again(api, receiver):
    endpoint_id = create(api, url=receiver.url).json()["id"]
    api.post("/api/v1/contacts/", {"name": "Ada"}, format="json")
    relay.deliver_due()
    (delivery,) = api.get(f"{URL}{endpoint_id}/deliveries/").json()["results"]
    again = api.post(f"{URL}{endpoint_id}/deliveries/{delivery['id']}/redeliver/")
    assert again.status_code == 202
    assert again.json()["status"] == "pending"
    assert again.json()["message_id"] == delivery["message_id"]
    relay.deliver_due()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery["message_id"]] * 2
    assert len(receiver.handled) == 1


def test_a_delivery_of_another_endpoint_answers_404(api, receiver):
    first = create(api, url=receiver.url).json()["id"]
    second = create(api, url=receiver.url).json()["id"]
    api.post("/api/v1/contacts/", {"name": "Ada"}, format="json")
    (delivery,) = api.get(f"{URL}{first}/deliveries/").json()["results"]
    response = api.post(f"{URL}{second}/deliveries/{delivery['id']}/redeliver/")
    assert response.status_code == 404
    assert WebhookDelivery.objects.count() == 2  # one per endpoint, nothing added
