"""API keys on the settings page: created with post/redirect/get, shown once, never twice."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.helpers import agent_url
from workspaces.models import ApiKey

pytestmark = pytest.mark.django_db

RAW_KEY = re.compile(r"rk_[A-Za-z0-9_\-]{20,}")


def test_a_new_key_is_shown_once_after_a_redirect_and_a_reload_creates_nothing(admin_client, agent):
    create = agent_url("workspaces:api_key_create", agent)
    settings_page = agent_url("workspaces:settings", agent)

    response = admin_client.post(create, {"name": "CRM sync"})
    assert response.status_code == 302
    assert response["Location"] == settings_page
    assert ApiKey.objects.filter(agent=agent, name="CRM sync").count() == 1

    shown = admin_client.get(settings_page).content.decode()
    raw = RAW_KEY.search(shown).group(0)
    # The key works, and the page never shows it again.
    assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/contacts/").status_code == 200
    again = admin_client.get(settings_page).content.decode()
    assert raw not in again
    assert "CRM sync" in again
    # A reload of the page after the redirect is a GET: no second key.
    assert ApiKey.objects.filter(agent=agent, name="CRM sync").count() == 1


def test_a_direct_visit_to_the_create_address_leads_to_the_settings_page(admin_client, agent):
    response = admin_client.get(agent_url("workspaces:api_key_create", agent))
    assert response.status_code == 302
    assert response["Location"] == agent_url("workspaces:settings", agent)
    assert not ApiKey.objects.filter(agent=agent, created_by__isnull=False).exists()


def test_a_key_without_a_name_is_refused_on_the_page(admin_client, agent):
    before = ApiKey.objects.filter(agent=agent).count()
    response = admin_client.post(agent_url("workspaces:api_key_create", agent), {"name": " "})
    assert response.status_code == 400
    assert ApiKey.objects.filter(agent=agent).count() == before
    html = response.content.decode()
    assert 'aria-invalid="true"' in html
    assert 'id="id_name_error"' in html


def test_staff_and_other_workspaces_cannot_create_keys(
    staff_client, admin_client, other_agent, agent
):
    before = ApiKey.objects.count()
    staff = staff_client.post(agent_url("workspaces:api_key_create", agent), {"name": "x"})
    assert staff.status_code == 403
    foreign = admin_client.post(agent_url("workspaces:api_key_create", other_agent), {"name": "x"})
    assert foreign.status_code == 404
    assert ApiKey.objects.count() == before
