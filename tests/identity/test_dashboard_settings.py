"""The identity settings page (admins): reveal, rotate, the toggle, the token check."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import AgentFactory, MembershipFactory, UserFactory
from tests.identity.conftest import Widget, make_jwt, secret_of, user_hash
from workspaces.models import IdentitySecret, Membership
from workspaces.selectors import identity_secrets_valid
from workspaces.services import identity_secret_create

pytestmark = pytest.mark.django_db


def _url(agent) -> str:
    return reverse("identity:settings", kwargs={"agent_public_id": agent.public_id})


def test_admins_see_the_masked_secret_snippets_and_options(admin_client, agent):
    secret = secret_of(agent)
    response = admin_client.get(_url(agent))
    assert response.status_code == 200
    content = response.content.decode()
    assert secret not in content
    assert f"{secret[:4]}{'•' * 12}{secret[-4:]}" in content
    assert 'class="tabs"' in content
    assert "Identity verification" in content
    assert "jwt.encode(payload, os.environ[&quot;RAPPORT_IDENTITY_SECRET&quot;]" in content
    assert "crypto\n    .createHmac(&quot;sha256&quot;" in content
    assert f"data-agent=&quot;{agent.public_id}&quot;" in content
    assert 'name="create_attributes_from_signed" checked' in content
    assert 'name="create_attributes_from_unsigned">' in content
    assert "no-cache" in response["Cache-Control"]


def test_the_page_needs_a_signed_in_admin_of_the_agents_workspace(
    staff_client, agent, other_agent, admin_client
):
    anonymous = Client().get(_url(agent))
    assert anonymous.status_code == 302
    assert reverse("login") in anonymous.url
    assert staff_client.get(_url(agent)).status_code == 403
    assert admin_client.get(_url(other_agent)).status_code == 404
    assert (
        admin_client.get(_url(other_agent).replace(other_agent.public_id, "ag_x")).status_code
        == 404
    )


def test_it_refuses_other_methods(admin_client, agent):
    assert admin_client.put(_url(agent)).status_code == 405
    assert admin_client.delete(_url(agent)).status_code == 405


def test_posts_need_a_csrf_token(admin_user, agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    before = IdentitySecret.objects.count()
    assert client.post(_url(agent), {"action": "rotate"}).status_code == 403
    assert IdentitySecret.objects.count() == before


def test_staff_cannot_reveal_or_rotate_and_other_workspaces_answer_404(
    staff_client, admin_client, agent, other_agent
):
    secret = secret_of(agent)
    for action in ("reveal", "rotate", "settings", "check"):
        response = staff_client.post(_url(agent), {"action": action})
        assert response.status_code == 403
        assert secret not in response.content.decode()
    other_secret = secret_of(other_agent)
    for action in ("reveal", "rotate"):
        response = admin_client.post(_url(other_agent), {"action": action})
        assert response.status_code == 404
        assert other_secret not in response.content.decode()
    assert secret_of(agent) == secret
    assert secret_of(other_agent) == other_secret


def test_reveal_shows_the_secret_as_a_fragment_or_a_page(admin_client, agent):
    secret = secret_of(agent)
    fragment = admin_client.post(_url(agent), {"action": "reveal"}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert html.lstrip().startswith('<div id="identity-secret"')
    assert f'value="{secret}"' in html
    assert "no-cache" in fragment["Cache-Control"]
    page = admin_client.post(_url(agent), {"action": "reveal"})
    assert "<html" in page.content.decode()
    assert f'value="{secret}"' in page.content.decode()


def test_rotate_makes_a_new_secret_and_keeps_the_old_one_verifying(admin_client, agent, settings):
    settings.IDENTITY_SECRET_GRACE_SECONDS = 7200
    old = secret_of(agent)
    old_token = make_jwt(secret=old, user_id="u-1")
    response = admin_client.post(_url(agent), {"action": "rotate"})
    assert response.status_code == 302
    assert response.url == _url(agent)
    new = secret_of(agent)
    assert new != old
    assert identity_secrets_valid(agent=agent) == [new, old]
    page = admin_client.get(_url(agent)).content.decode()
    assert "A new identity secret is in use" in page
    assert "Previous secrets, still verifying" in page
    assert f"{old[:4]}{'•' * 12}{old[-4:]}" in page
    assert Widget(agent).identify({"token": old_token}).status_code == 200


def test_attribute_creation_is_set_for_signed_and_unsigned_data_apart(admin_client, agent):
    assert (agent.create_attributes_from_signed, agent.create_attributes_from_unsigned) == (
        True,
        False,
    )
    response = admin_client.post(
        _url(agent), {"action": "settings", "create_attributes_from_unsigned": "on"}
    )
    agent.refresh_from_db()
    assert (agent.create_attributes_from_signed, agent.create_attributes_from_unsigned) == (
        False,
        True,
    )
    assert "New keys from custom_data now become attributes" in (
        admin_client.get(response.url).content.decode()
    )
    admin_client.post(_url(agent), {"action": "settings"})
    agent.refresh_from_db()
    assert (agent.create_attributes_from_signed, agent.create_attributes_from_unsigned) == (
        False,
        False,
    )


def test_the_checker_explains_a_token_or_a_hash_without_writing(admin_client, agent):
    good = admin_client.post(
        _url(agent),
        {"action": "check", "token": make_jwt(agent, user_id="u-9")},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Valid: identify accepts this token." in good
    assert "u-9" in good
    expired = admin_client.post(
        _url(agent), {"action": "check", "token": make_jwt(agent, user_id="u", exp_in=-999)}
    ).content.decode()
    assert "token_expired" in expired
    hashed = admin_client.post(
        _url(agent),
        {"action": "check", "user_id": "u-9", "user_hash": user_hash(agent, "u-9")},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Valid: this user_hash proves the user_id." in hashed
    wrong = admin_client.post(
        _url(agent), {"action": "check", "user_id": "u-9", "user_hash": "00"}
    ).content.decode()
    assert "invalid_signature" in wrong
    from contacts.models import Contact

    assert not Contact.objects.exists()


def test_an_unknown_action_is_a_400(admin_client, agent):
    assert admin_client.post(_url(agent), {"action": "explode"}).status_code == 400


def test_the_agent_name_is_escaped(admin_user, workspace):
    agent = AgentFactory(workspace=workspace, name="<script>alert(1)</script>")
    identity_secret_create(agent=agent)
    client = Client()
    client.force_login(admin_user)
    content = client.get(_url(agent)).content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;" in content


def test_secrets_and_tokens_never_reach_the_logs(admin_client, agent, caplog, settings):
    settings.DEBUG = True  # SQL is logged too
    secret = secret_of(agent)
    token = make_jwt(agent, user_id="u-1")
    with caplog.at_level(logging.DEBUG):
        admin_client.post(_url(agent), {"action": "reveal"})
        widget = Widget(agent)
        widget.identify({"token": token})
        widget.identify({"user_id": "u-1", "user_hash": user_hash(agent, "u-1")})
        widget.identify({"token": make_jwt(secret="s" * 48, user_id="u-2")})
        widget.identify({"user_id": "u-1", "user_hash": "0" * 64})
        admin_client.post(_url(agent), {"action": "check", "token": token})
        admin_client.post(_url(agent), {"action": "rotate"})
        admin_client.post(_url(agent), {"action": "reveal"})
    new_secret = secret_of(agent)
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert "identify refused" in logged  # logging did happen
    for needle in (secret, new_secret, token, user_hash(agent, "u-1"), widget.session_token):
        assert needle not in logged


def test_a_member_of_two_workspaces_reaches_each_only_with_its_role(agent, other_agent):
    user = UserFactory(username="both@example.com")
    MembershipFactory(user=user, workspace=agent.workspace, role=Membership.Role.ADMIN)
    MembershipFactory(user=user, workspace=other_agent.workspace, role=Membership.Role.STAFF)
    client = Client()
    client.force_login(user)
    assert client.get(_url(agent)).status_code == 200
    assert client.get(_url(other_agent)).status_code == 403
