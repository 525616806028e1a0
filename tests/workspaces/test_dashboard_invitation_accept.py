"""The page an invitation link opens: a new person creates an account, an existing one
signs in, and both join with the invited role; a link that no longer works says why and
changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import AgentFactory, MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.invitations import invitation_create
from workspaces.models import Invitation, Membership, WorkspaceEvent

pytestmark = pytest.mark.django_db

User = get_user_model()
GOOD_PASSWORD = "tidal-orbit-lantern-42"


@pytest.fixture
def invited(workspace, admin_user, agent):
    return invitation_create(
        workspace=workspace, email="Sam@Acme.test", role="staff", invited_by=admin_user
    )


def accept_url(new) -> str:
    return reverse("invitation_accept", kwargs={"token": new.raw_token})


def create(client: Client, new, **fields):
    data = {
        "action": "create",
        "name": "Sam  Carter Jr",
        "password1": GOOD_PASSWORD,
        "password2": GOOD_PASSWORD,
        **fields,
    }
    return client.post(accept_url(new), data)


def test_a_new_person_sets_a_name_and_password_and_joins_signed_in(invited, agent, workspace):
    client = Client()
    page = client.get(accept_url(invited))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'admin@acme.test invited <strong class="invited-email">sam@acme.test</strong>' in html
    assert "to join as <strong>Staff</strong>" in html
    assert 'name="password2"' in html
    assert "has-error" not in html  # nothing typed yet, nothing refused
    assert page["Cache-Control"].startswith("max-age=0")

    response = create(client, invited)
    assert response.status_code == 302
    assert response["Location"] == reverse("contacts:list", args=[agent.public_id])
    user = User.objects.get(username="sam@acme.test")
    assert (user.first_name, user.last_name, user.email) == ("Sam", "Carter Jr", "sam@acme.test")
    assert user.get_full_name() == "Sam Carter Jr"
    assert user.check_password(GOOD_PASSWORD)
    assert user.last_login is not None
    assert Membership.objects.get(user=user, workspace=workspace).role == "staff"
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == user
    assert invitation.accepted_at is not None
    event = WorkspaceEvent.objects.get(action="invitation.accepted")
    assert (event.actor, event.target_email) == (user, "sam@acme.test")
    assert event.details == {"role": "staff", "new_account": True}
    assert event.summary == "created an account and joined as Staff"
    # Signed in: the dashboard opens, with a welcome.
    contacts = client.get(response["Location"])
    assert contacts.status_code == 200
    assert b"Welcome to Acme. You are Staff here." in contacts.content


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"password1": "short", "password2": "short"}, "password1", "too short"),
        ({"password1": "12345678901", "password2": "12345678901"}, "password1", "entirely numeric"),
        ({"password1": "password123", "password2": "password123"}, "password1", "too common"),
        ({"password1": "sam.acme.test", "password2": "sam.acme.test"}, "password1", "too similar"),
        ({"password2": "something-else-entirely"}, "password2", "The two passwords are different."),
        ({"name": "   "}, "name", "This field is required."),
    ],
)
def test_a_refused_account_says_which_field_and_why_and_creates_nothing(
    invited, fields, field, message
):
    response = create(Client(), invited, **fields)
    assert response.status_code == 400
    html = response.content.decode().replace("&#x27;", "'")
    assert f'id="id_{field}_error"' in html
    assert message in html
    assert not User.objects.filter(username="sam@acme.test").exists()
    assert Invitation.objects.get().is_open
    assert not WorkspaceEvent.objects.filter(action="invitation.accepted").exists()


def test_a_used_link_says_so_and_changes_nothing(invited):
    create(Client(), invited)
    again = Client()
    page = again.get(accept_url(invited))
    assert page.status_code == 410
    assert b"This invitation was already used" in page.content
    response = create(again, invited, name="Someone Else")
    assert response.status_code == 410
    assert User.objects.filter(username="sam@acme.test").count() == 1
    assert User.objects.get(username="sam@acme.test").first_name == "Sam"


def test_an_expired_link_says_when_it_ended_and_changes_nothing(invited):
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    client = Client()
    page = client.get(accept_url(invited))
    assert page.status_code == 410
    assert b"This invitation has expired" in page.content
    assert b"Ask an admin of Acme for a new link." in page.content
    assert create(client, invited).status_code == 410
    assert not User.objects.filter(username="sam@acme.test").exists()


def test_a_revoked_link_says_so(invited, admin_user):
    from workspaces.invitations import invitation_revoke

    invitation_revoke(invitation=invited.invitation, actor=admin_user)
    page = Client().get(accept_url(invited))
    assert page.status_code == 410
    assert b"This invitation was withdrawn" in page.content
    assert create(Client(), invited).status_code == 410
    assert not User.objects.filter(username="sam@acme.test").exists()


def test_an_unknown_link_is_a_404_that_explains(db):
    for token in ("not-a-token", "x" * 500):
        page = Client().get(reverse("invitation_accept", kwargs={"token": token}))
        assert page.status_code == 404
        assert b"This invitation link does not work" in page.content


def test_someone_with_an_account_signs_in_to_join(invited, workspace, agent):
    sam = UserFactory(username="sam@acme.test")
    other = WorkspaceFactory(name="Initech", slug="initech")
    MembershipFactory(user=sam, workspace=other, role="admin")
    client = Client()
    page = client.get(accept_url(invited)).content.decode()
    assert "already has a Rapport account: sign in to accept." in page
    assert "has-error" not in page
    assert 'name="password1"' not in page
    assert reverse("password_reset") in page

    wrong = client.post(accept_url(invited), {"action": "sign_in", "password": "nope"})
    assert wrong.status_code == 400
    assert b"This is not the password of this account." in wrong.content
    assert not Membership.objects.filter(user=sam, workspace=workspace).exists()

    right = client.post(
        accept_url(invited), {"action": "sign_in", "password": "correct horse battery"}
    )
    assert right.status_code == 302
    assert right["Location"] == reverse("contacts:list", args=[agent.public_id])
    assert Membership.objects.get(user=sam, workspace=workspace).role == "staff"
    assert client.session["_auth_user_id"] == str(sam.pk)
    event = WorkspaceEvent.objects.get(action="invitation.accepted")
    assert event.details == {"role": "staff", "new_account": False}
    # Their other workspace is untouched.
    assert Membership.objects.get(user=sam, workspace=other).role == "admin"


def test_signing_in_to_accept_is_throttled_like_the_sign_in_page(invited, workspace, settings):
    settings.LOGIN_MAX_FAILURES = 2
    sam = UserFactory(username="sam@acme.test")
    client = Client()
    for _ in range(2):
        client.post(accept_url(invited), {"action": "sign_in", "password": "nope"})
    locked = client.post(
        accept_url(invited), {"action": "sign_in", "password": "correct horse battery"}
    )
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts" in locked.content
    assert not Membership.objects.filter(user=sam, workspace=workspace).exists()


def test_the_invited_person_already_signed_in_joins_with_one_click(invited, workspace):
    sam = UserFactory(username="sam@acme.test")
    client = Client()
    client.force_login(sam)
    page = client.get(accept_url(invited)).content.decode()
    assert "Join Acme</button>" in page
    response = client.post(accept_url(invited), {"action": "join"})
    assert response.status_code == 302
    assert Membership.objects.get(user=sam, workspace=workspace).role == "staff"


def test_someone_else_signed_in_is_offered_to_sign_out_first(invited, admin_client, workspace):
    page = admin_client.get(accept_url(invited)).content.decode()
    assert "You are signed in as <strong>admin@acme.test</strong>" in page
    # A forged "create" for the signed-in admin changes nothing.
    forged = create(admin_client, invited)
    assert forged.status_code == 409
    assert Invitation.objects.get().is_open
    assert not User.objects.filter(username="sam@acme.test").exists()

    response = admin_client.post(accept_url(invited), {"action": "sign_out"})
    assert response.status_code == 302
    assert response["Location"] == accept_url(invited)
    assert "_auth_user_id" not in admin_client.session
    assert b'name="password1"' in admin_client.get(accept_url(invited)).content


def test_an_account_created_meanwhile_leads_to_signing_in(invited):
    client = Client()
    client.get(accept_url(invited))
    UserFactory(username="sam@acme.test")  # another tab, another invitation
    response = create(client, invited)
    # The page now asks to sign in instead (the form no longer fits).
    assert response.status_code == 409
    assert b"sign in to accept" in response.content
    assert User.objects.filter(username__iexact="sam@acme.test").count() == 1


def test_joining_a_workspace_without_agents_goes_home(admin_user):
    empty = WorkspaceFactory(name="Empty", slug="empty")
    new = invitation_create(workspace=empty, email="x@empty.test", role="admin", invited_by=None)
    response = create(Client(), new)
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert Membership.objects.get(user__username="x@empty.test").role == "admin"


def test_the_page_escapes_what_it_shows(admin_user):
    workspace = WorkspaceFactory(name="<b>Evil</b>", slug="evil")
    AgentFactory(workspace=workspace)
    new = invitation_create(
        workspace=workspace, email="x@evil.test", role="staff", invited_by=admin_user
    )
    html = Client().get(accept_url(new)).content.decode()
    assert "<b>Evil</b>" not in html
    assert "&lt;b&gt;Evil&lt;/b&gt;" in html


def test_the_accept_page_needs_the_csrf_token(invited):
    client = Client(enforce_csrf_checks=True)
    assert create(client, invited).status_code == 403
    assert not User.objects.filter(username="sam@acme.test").exists()
