from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import AgentFactory
from workspaces.models import ApiKey, hash_api_key
from workspaces.services import api_key_create

pytestmark = pytest.mark.django_db


def _url(agent, name="workspaces:settings", **kwargs):
    return reverse(name, kwargs={"agent_public_id": agent.public_id, **kwargs})


def test_admins_see_settings_with_tabs_and_keys(admin_client, agent):
    api_key_create(agent=agent, name="Billing sync")
    response = admin_client.get(_url(agent))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'aria-label="Settings"' in body  # the shared settings tabs
    assert "General &amp; API keys" in body
    assert "Billing sync" in body
    assert 'value="Support"' in body
    assert '<option value="US" selected>US (+1)</option>' in body
    assert "Never" in body  # last used


def test_staff_get_403_and_other_workspaces_404(staff_client, admin_client, agent, other_agent):
    assert staff_client.get(_url(agent)).status_code == 403
    response = staff_client.post(_url(agent), {"name": "X", "default_phone_region": "FR"})
    assert response.status_code == 403
    agent.refresh_from_db()
    assert agent.name == "Support"
    assert (
        staff_client.post(_url(agent, "workspaces:api_key_create"), {"name": "k"}).status_code
        == 403
    )
    assert admin_client.get(_url(other_agent)).status_code == 404
    response = admin_client.post(_url(other_agent, "workspaces:api_key_create"), {"name": "k"})
    assert response.status_code == 404
    assert not ApiKey.objects.exists()


def test_signed_out_users_are_sent_to_login(agent):
    response = Client().get(_url(agent))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_saving_general_settings(admin_client, agent):
    response = admin_client.post(
        _url(agent), {"name": "  Front   desk ", "default_phone_region": "FR"}
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.name, agent.default_phone_region) == ("Front desk", "FR")


def test_bad_settings_are_refused_with_field_errors(admin_client, agent, workspace):
    AgentFactory(workspace=workspace, name="Sales")
    response = admin_client.post(_url(agent), {"name": "Sales", "default_phone_region": "XX"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Another agent of this workspace has this name." in body
    assert "Select a valid choice. XX is not one of the available choices." in body
    agent.refresh_from_db()
    assert (agent.name, agent.default_phone_region) == ("Support", "US")


def test_creating_a_key_shows_it_once_and_stores_only_its_hash(admin_client, admin_user, agent):
    created = admin_client.post(_url(agent, "workspaces:api_key_create"), {"name": "Zapier"})
    # Post/redirect/get: reloading the page that shows the key creates no second one.
    assert created.status_code == 302
    assert created["Location"] == _url(agent)
    response = admin_client.get(created["Location"])
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    key = ApiKey.objects.get(agent=agent, name="Zapier")
    raw = response.context["new_key"].raw
    assert raw.startswith("rk_")
    assert f'value="{raw}"' in response.content.decode()
    assert key.key_hash == hash_api_key(raw)
    assert key.created_by == admin_user
    # The key works against the API, and the page never shows it again.
    assert Client().get("/api/v1/agent/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    again = admin_client.get(_url(agent)).content.decode()
    assert raw not in again
    assert key.prefix in again
    assert ApiKey.objects.filter(agent=agent, name="Zapier").count() == 1


def test_a_key_needs_a_name(admin_client, agent):
    response = admin_client.post(_url(agent, "workspaces:api_key_create"), {"name": "  "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not ApiKey.objects.filter(agent=agent).exists()


def test_revoking_a_key_stops_it(admin_client, agent):
    new = api_key_create(agent=agent, name="Old")
    response = admin_client.post(_url(agent, "workspaces:api_key_revoke", key_id=new.api_key.pk))
    assert response.status_code == 302
    new.api_key.refresh_from_db()
    assert new.api_key.revoked_at is not None
    assert Client().get("/api/v1/agent/", HTTP_AUTHORIZATION=f"Bearer {new.raw}").status_code == 401
    assert "Revoked" in admin_client.get(_url(agent)).content.decode()


def test_revoke_needs_post_admin_and_the_agents_own_key(
    admin_client, staff_client, agent, other_agent
):
    mine = api_key_create(agent=agent, name="Mine").api_key
    theirs = api_key_create(agent=other_agent, name="Theirs").api_key
    assert (
        admin_client.get(_url(agent, "workspaces:api_key_revoke", key_id=mine.pk)).status_code
        == 405
    )
    assert (
        staff_client.post(_url(agent, "workspaces:api_key_revoke", key_id=mine.pk)).status_code
        == 403
    )
    # Another agent's key through this agent's URL: not found, and untouched.
    assert (
        admin_client.post(_url(agent, "workspaces:api_key_revoke", key_id=theirs.pk)).status_code
        == 404
    )
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is None
    assert theirs.revoked_at is None


def test_opening_the_key_creation_address_leads_to_the_settings_page(admin_client, agent):
    response = admin_client.get(_url(agent, "workspaces:api_key_create"))
    assert (response.status_code, response["Location"]) == (302, _url(agent))
    assert not ApiKey.objects.filter(agent=agent).exists()


def test_the_page_escapes_key_names(admin_client, agent):
    api_key_create(agent=agent, name="<script>alert(1)</script>")
    body = admin_client.get(_url(agent)).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_the_settings_page_is_in_the_navigation_for_admins_only(admin_client, staff_client, agent):
    contacts = reverse("contacts:list", kwargs={"agent_public_id": agent.public_id})
    assert f'href="{_url(agent)}"' in admin_client.get(contacts).content.decode()
    staff_page = staff_client.get(contacts).content.decode()
    # Staff reach Settings only for the read-only member list.
    assert f'href="{_url(agent)}"' not in staff_page
    assert f'href="{_url(agent)}members/">Settings</a>' in staff_page


def test_query_count_stays_flat_with_many_keys(admin_client, agent, django_assert_max_num_queries):
    for n in range(3):
        api_key_create(agent=agent, name=f"k{n}")
    with django_assert_max_num_queries(12) as small:
        admin_client.get(_url(agent))
    for n in range(20):
        api_key_create(agent=agent, name=f"more{n}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        admin_client.get(_url(agent))
