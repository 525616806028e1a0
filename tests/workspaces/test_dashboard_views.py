from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import AgentFactory, ContactFactory

pytestmark = pytest.mark.django_db


def test_login_page_renders_and_signs_in(admin_user, agent):
    client = Client()
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content
    response = client.post(
        reverse("login"), {"username": admin_user.username, "password": "correct horse battery"}
    )
    assert response.status_code == 302
    home = client.get(reverse("home"))
    assert home.url == reverse("contacts:list", kwargs={"agent_public_id": agent.public_id})


def test_the_email_is_matched_whatever_its_case(admin_user):
    client = Client()
    page = client.get(reverse("login")).content.decode()
    assert 'type="email" name="username"' in page
    assert 'autocapitalize="off"' in page
    response = client.post(
        reverse("login"), {"username": "  Admin@ACME.Test ", "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(admin_user.pk)


def test_two_accounts_differing_only_by_case_need_the_exact_spelling(admin_user):
    from tests.factories import UserFactory

    twin = UserFactory(username="ADMIN@acme.test")
    client = Client()
    ambiguous = client.post(
        reverse("login"), {"username": "Admin@acme.test", "password": "correct horse battery"}
    )
    assert ambiguous.status_code == 400
    exact = client.post(
        reverse("login"), {"username": "ADMIN@acme.test", "password": "correct horse battery"}
    )
    assert exact.status_code == 302
    assert client.session["_auth_user_id"] == str(twin.pk)


def test_a_wrong_password_says_so_without_signing_in(admin_user):
    client = Client()
    response = client.post(reverse("login"), {"username": admin_user.username, "password": "no"})
    assert response.status_code == 400
    assert b"Please enter a correct" in response.content
    assert "_auth_user_id" not in client.session


def test_repeated_failures_lock_the_login_even_with_the_right_password(admin_user, settings):
    settings.LOGIN_MAX_FAILURES = 3
    client = Client()
    for _ in range(3):
        client.post(reverse("login"), {"username": admin_user.username, "password": "bad"})
    response = client.post(
        reverse("login"), {"username": admin_user.username, "password": "correct horse battery"}
    )
    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_login_ignores_an_offsite_next_url(admin_user):
    response = Client().post(
        reverse("login") + "?next=https://evil.example/",
        {"username": admin_user.username, "password": "correct horse battery"},
    )
    assert response.url == reverse("home")


def test_logout_needs_post(admin_client):
    assert admin_client.get(reverse("logout")).status_code == 405
    assert admin_client.post(reverse("logout")).status_code == 302
    assert admin_client.get(reverse("home")).status_code == 302  # back to login


def test_pages_need_a_signed_in_user(agent):
    url = reverse("contacts:list", kwargs={"agent_public_id": agent.public_id})
    response = Client().get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_user_without_workspace_is_told_so(db):
    from tests.factories import UserFactory

    client = Client()
    client.force_login(UserFactory())
    response = client.get(reverse("home"))
    assert b"not in a workspace" in response.content


def test_the_switcher_lists_only_the_users_agents(admin_client, agent, other_agent, workspace):
    second = AgentFactory(workspace=workspace, name="Billing bot")
    page = admin_client.get(reverse("contacts:list", kwargs={"agent_public_id": agent.public_id}))
    content = page.content.decode()
    assert "Billing bot" in content
    assert second.public_id in content
    assert other_agent.name not in content


def test_another_workspaces_agent_is_a_404(admin_client, other_agent):
    ContactFactory(agent=other_agent, name="Secret Person")
    url = reverse("contacts:list", kwargs={"agent_public_id": other_agent.public_id})
    response = admin_client.get(url)
    assert response.status_code == 404
    assert b"Secret Person" not in response.content


def test_pages_send_a_content_security_policy(admin_client, agent):
    response = admin_client.get(
        reverse("contacts:list", kwargs={"agent_public_id": agent.public_id})
    )
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy
    assert "frame-ancestors 'none'" in policy
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in response.content.decode()
