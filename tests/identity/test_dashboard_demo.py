"""The demo host page and its pretend customer backend (development only)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contacts.models import Contact
from tests.identity.conftest import Widget, user_hash

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _demo_on(settings):
    settings.WIDGET_DEMO_ENABLED = True


def _sign(client, agent, **data):
    return client.post(reverse("identity:demo_sign"), {"agent": agent.public_id, **data})


def test_the_demo_page_embeds_the_widget_with_one_script_tag(admin_client, agent):
    response = admin_client.get(reverse("identity:demo"), {"agent": agent.public_id})
    assert response.status_code == 200
    content = response.content.decode()
    assert f'src="/static/widget/rapport.js" data-agent="{agent.public_id}" nonce="' in content
    assert "Ada Lovelace" in content


def test_the_demo_is_off_unless_enabled(admin_client, agent, settings):
    settings.WIDGET_DEMO_ENABLED = False
    assert admin_client.get(reverse("identity:demo")).status_code == 404
    assert _sign(admin_client, agent, user_id="1001").status_code == 404


def test_the_demo_backend_signs_tokens_identify_accepts(admin_client, agent):
    response = _sign(
        admin_client,
        agent,
        mode="jwt",
        user_id="1001",
        contact_attributes='{"name": "Ada Lovelace", "email": "ada@example.com"}',
    )
    token = response.json()["token"]
    assert Widget(agent).identify({"token": token}).status_code == 200
    contact = Contact.objects.get(agent=agent)
    assert (contact.external_id, contact.name, contact.identity) == (
        "1001",
        "Ada Lovelace",
        "verified",
    )
    hashed = _sign(admin_client, agent, mode="hmac", user_id="1002").json()
    assert hashed == {"user_id": "1002", "user_hash": user_hash(agent, "1002")}


def test_the_demo_backend_explains_bad_input(admin_client, agent):
    assert _sign(admin_client, agent, user_id="").status_code == 400
    bad = _sign(admin_client, agent, user_id="1", contact_attributes="{nope")
    assert bad.status_code == 400
    assert "not JSON" in bad.json()["error"]
    assert _sign(admin_client, agent, user_id="1", contact_attributes="[1]").status_code == 400


def test_only_admins_of_the_agent_may_use_the_demo_backend(
    staff_client, admin_client, agent, other_agent
):
    assert _sign(staff_client, agent, user_id="1").status_code == 403
    assert _sign(admin_client, other_agent, user_id="1").status_code == 404
    assert admin_client.get(reverse("identity:demo_sign")).status_code == 405
    assert staff_client.get(reverse("identity:demo")).status_code == 404
    assert (
        admin_client.get(reverse("identity:demo"), {"agent": other_agent.public_id}).context[
            "agent"
        ]
        == agent
    )
