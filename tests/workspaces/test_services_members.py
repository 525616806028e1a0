"""Members services: the last-admin rule under concurrency, single-use invitations, the
audit log's sentences, and ending someone's sessions."""

from __future__ import annotations

import pytest
from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import Client
from django.urls import reverse

from core.errors import DomainError, ValidationFailed
from tests.factories import AgentFactory, MembershipFactory, UserFactory, WorkspaceFactory
from tests.helpers import race
from workspaces.auth import EmailBackend
from workspaces.invitations import (
    AccountExists,
    AlreadyMember,
    InvitationClosed,
    invitation_accept,
    invitation_accept_new_account,
    invitation_create,
    split_name,
)
from workspaces.models import Invitation, Membership, SessionUser, UserSettings, WorkspaceEvent
from workspaces.services import LastAdmin, membership_remove, membership_role_change
from workspaces.sessions import sessions_end

User = get_user_model()


def _admins(workspace, count: int) -> list[Membership]:
    return [
        MembershipFactory(
            user=UserFactory(username=f"admin{i}@acme.test"), workspace=workspace, role="admin"
        )
        for i in range(count)
    ]


# --- The workspace always keeps an admin ------------------------------------------------------


@pytest.mark.django_db
def test_the_last_admin_is_refused_and_another_admin_makes_it_possible(workspace):
    (only,) = _admins(workspace, 1)
    with pytest.raises(LastAdmin) as refused:
        membership_role_change(membership=only, role="staff", actor=only.user)
    assert refused.value.code == "last_admin"
    assert refused.value.status == 409
    with pytest.raises(LastAdmin):
        membership_remove(membership=only, actor=only.user)
    assert Membership.objects.get(pk=only.pk).role == "admin"

    MembershipFactory(user=UserFactory(username="new@acme.test"), workspace=workspace, role="admin")
    membership_role_change(membership=only, role="staff", actor=only.user)
    assert Membership.objects.get(pk=only.pk).role == "staff"


@pytest.mark.django_db
def test_an_admin_of_another_workspace_does_not_count(workspace):
    (only,) = _admins(workspace, 1)
    elsewhere = WorkspaceFactory(name="Globex", slug="globex")
    MembershipFactory(user=UserFactory(username="x@globex.test"), workspace=elsewhere, role="admin")
    with pytest.raises(LastAdmin):
        membership_remove(membership=only, actor=None)


@pytest.mark.django_db
def test_a_member_removed_meanwhile_is_not_found(workspace):
    first, second = _admins(workspace, 2)
    stale = Membership.objects.select_related("user").get(pk=second.pk)
    Membership.objects.filter(pk=second.pk).delete()
    with pytest.raises(DomainError) as refused:
        membership_role_change(membership=stale, role="staff", actor=first.user)
    assert (refused.value.code, refused.value.status) == ("not_found", 404)
    assert "admin1@acme.test was removed from this workspace meanwhile." in refused.value.message
    membership_remove(membership=stale, actor=first.user)  # nothing left to remove
    assert not WorkspaceEvent.objects.exists()


@pytest.mark.django_db
def test_an_unknown_role_is_a_field_error(workspace):
    (only,) = _admins(workspace, 1)
    with pytest.raises(ValidationFailed) as refused:
        membership_role_change(membership=only, role="owner", actor=None)
    assert refused.value.fields == {"role": ["'owner' is not a role; use admin or staff."]}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["demote", "remove"])
def test_two_admins_removing_each_other_at_once_leave_one_admin(change):
    """Each sees the other as the remaining admin unless the changes are serialized: the
    workspace row lock (FOR NO KEY UPDATE on PostgreSQL, the write lock on SQLite) makes the
    second one see the first one's result and refuse."""
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    first, second = _admins(workspace, 2)
    pairs = [(first, second), (second, first)]

    def act(index: int) -> str:
        target, actor = pairs[index]
        try:
            if change == "demote":
                membership_role_change(membership=target, role="staff", actor=actor.user)
            else:
                membership_remove(membership=target, actor=actor.user)
        except LastAdmin:
            return "refused"
        return "done"

    for _ in range(3 if connection.vendor == "postgresql" else 1):
        Membership.objects.filter(workspace=workspace).delete()
        first, second = _admins(workspace, 2)
        pairs[:] = [(first, second), (second, first)]
        assert sorted(race(act, 2)) == ["done", "refused"]
        assert Membership.objects.filter(workspace=workspace, role="admin").count() == 1


# --- Invitations ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_invitation_keeps_the_email_lower_cased_and_refuses_members(workspace, admin_user):
    new = invitation_create(
        workspace=workspace, email="  Ada@Example.COM ", role="admin", invited_by=admin_user
    )
    assert new.invitation.email == "ada@example.com"
    assert len(new.raw_token) >= 40
    with pytest.raises(AlreadyMember) as refused:
        invitation_create(
            workspace=workspace, email="ADMIN@acme.test", role="staff", invited_by=admin_user
        )
    assert refused.value.fields == {
        "email": ["admin@acme.test is already a member of this workspace."]
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "role", "fields"),
    [
        ("nope", "staff", {"email": ["'nope' is not an email address."]}),
        ("", "staff", {"email": ["Enter an email."]}),
        ("a@b.test", "owner", {"role": ["'owner' is not a role; use admin or staff."]}),
    ],
)
def test_invitation_input_is_checked_by_the_service_too(workspace, email, role, fields):
    with pytest.raises(ValidationFailed) as refused:
        invitation_create(workspace=workspace, email=email, role=role, invited_by=None)
    assert refused.value.fields == fields
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_a_user_known_by_the_email_field_counts_as_a_member(workspace):
    user = UserFactory(username="ada", email="Ada@Example.com")
    MembershipFactory(user=user, workspace=workspace)
    with pytest.raises(AlreadyMember):
        invitation_create(
            workspace=workspace, email="ada@example.com", role="staff", invited_by=None
        )


@pytest.mark.django_db
def test_the_database_keeps_one_open_invitation_per_address(workspace):
    from django.db import IntegrityError, transaction

    invitation_create(workspace=workspace, email="ada@example.com", role="staff", invited_by=None)
    first = Invitation.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(
            workspace=workspace,
            email="ADA@example.com",
            role="staff",
            token_hash="x" * 64,
            expires_at=first.expires_at,
        )
    # Once accepted or revoked, the address can be invited again.
    Invitation.objects.update(revoked_at=first.expires_at)
    invitation_create(workspace=workspace, email="ada@example.com", role="staff", invited_by=None)
    assert Invitation.objects.count() == 2


@pytest.mark.django_db
def test_an_invitation_is_accepted_only_by_the_invited_person(workspace):
    new = invitation_create(
        workspace=workspace, email="ada@example.com", role="staff", invited_by=None
    )
    intruder = UserFactory(username="eve@example.com")
    from workspaces.invitations import WrongAccount

    with pytest.raises(WrongAccount):
        invitation_accept(invitation=new.invitation, user=intruder)
    assert not Membership.objects.filter(user=intruder).exists()
    assert Invitation.objects.get().is_open


@pytest.mark.django_db
def test_accepting_as_an_existing_member_keeps_their_role_and_closes_the_link(workspace):
    new = invitation_create(
        workspace=workspace, email="ada@example.com", role="admin", invited_by=None
    )
    ada = UserFactory(username="ada@example.com")
    MembershipFactory(user=ada, workspace=workspace, role="staff")  # added by hand meanwhile
    membership = invitation_accept(invitation=new.invitation, user=ada)
    assert membership.role == "staff"
    assert not Invitation.objects.get().is_open
    event = WorkspaceEvent.objects.get(action="invitation.accepted")
    assert event.details == {"role": "staff", "new_account": False, "already_member": True}


@pytest.mark.django_db
def test_a_closed_invitation_creates_no_account(workspace):
    new = invitation_create(
        workspace=workspace, email="ada@example.com", role="staff", invited_by=None
    )
    Invitation.objects.update(revoked_at=new.invitation.expires_at)
    with pytest.raises(InvitationClosed) as refused:
        invitation_accept_new_account(invitation=new.invitation, name="Ada", password="x" * 12)
    assert refused.value.reason == "revoked"
    assert refused.value.status == 410
    assert not User.objects.filter(username="ada@example.com").exists()


@pytest.mark.django_db
def test_an_existing_account_must_sign_in(workspace):
    new = invitation_create(
        workspace=workspace, email="ada@example.com", role="staff", invited_by=None
    )
    UserFactory(username="ADA@example.com")
    with pytest.raises(AccountExists):
        invitation_accept_new_account(invitation=new.invitation, name="Ada", password="x" * 12)
    assert User.objects.filter(username__iexact="ada@example.com").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_link_used_twice_at_the_same_instant_makes_one_account_and_one_member():
    workspace = WorkspaceFactory(name="Acme", slug="acme")
    AgentFactory(workspace=workspace)
    new = invitation_create(
        workspace=workspace, email="ada@example.com", role="staff", invited_by=None
    )

    def accept(index: int) -> str:
        try:
            invitation_accept_new_account(
                invitation=new.invitation, name=f"Ada {index}", password="tidal-orbit-42"
            )
        except (InvitationClosed, AccountExists) as refused:
            return refused.code
        return "joined"

    results = race(accept, 4 if connection.vendor == "postgresql" else 2)
    assert results.count("joined") == 1
    assert User.objects.filter(username="ada@example.com").count() == 1
    assert Membership.objects.filter(workspace=workspace).count() == 1
    assert WorkspaceEvent.objects.filter(action="invitation.accepted").count() == 1


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("Ada Lovelace", ("Ada", "Lovelace")),
        ("  Jean-Luc   de la Croix ", ("Jean-Luc", "de la Croix")),
        ("Plato", ("Plato", "")),
        ("", ("", "")),
    ],
)
def test_a_name_splits_into_first_and_last_and_joins_back(name, parts):
    assert split_name(name) == parts


# --- The audit log's sentences ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "details", "sentence"),
    [
        ("invitation.created", {"role": "staff"}, "invited sam@x.test as Staff"),
        (
            "invitation.reissued",
            {"role": "admin"},
            "made a new invitation link for sam@x.test (Admin)",
        ),
        ("invitation.revoked", {"role": "staff"}, "revoked the invitation of sam@x.test"),
        (
            "invitation.accepted",
            {"role": "staff", "new_account": True},
            "created an account and joined as Staff",
        ),
        ("invitation.accepted", {"role": "admin", "new_account": False}, "joined as Admin"),
        (
            "member.role_changed",
            {"from": "staff", "to": "admin"},
            "changed the role of sam@x.test from Staff to Admin",
        ),
        ("member.removed", {"role": "staff"}, "removed sam@x.test (Staff)"),
        ("member.removed", {"role": "admin", "self": True}, "left the workspace"),
    ],
)
def test_each_event_reads_as_a_sentence(action, details, sentence):
    event = WorkspaceEvent(action=action, target_email="sam@x.test", details=details)
    assert event.summary == sentence


# --- Ending sessions --------------------------------------------------------------------------


def _session_of(user) -> SessionStore:
    client = Client()
    client.force_login(user)
    return SessionStore(session_key=client.cookies["sessionid"].value), client


@pytest.mark.django_db
def test_epoch_zero_is_djangos_own_hash_so_existing_sessions_survive_the_upgrade(admin_user):
    as_loaded = SessionUser.objects.get(pk=admin_user.pk)
    assert as_loaded.session_epoch == 0
    assert as_loaded.get_session_auth_hash() == admin_user.get_session_auth_hash()


@pytest.mark.django_db
def test_ending_sessions_signs_out_every_one_of_that_user_only(admin_user, staff_user, agent):
    _, first = _session_of(admin_user)
    _, second = _session_of(admin_user)
    _, bystander = _session_of(staff_user)
    sessions_end(user=admin_user)
    url = reverse("contacts:list", args=[agent.public_id])
    assert first.get(url).status_code == 302
    assert second.get(url).status_code == 302
    assert bystander.get(url).status_code == 200
    assert UserSettings.objects.get(user=admin_user).session_epoch == 1
    # A new sign-in carries the new epoch and stays signed in.
    session, again = _session_of(admin_user)
    assert again.get(url).status_code == 200
    assert (
        session[HASH_SESSION_KEY]
        == SessionUser.objects.get(pk=admin_user.pk).get_session_auth_hash()
    )


@pytest.mark.django_db
def test_the_sign_in_page_stamps_the_epoch_too(admin_user, agent):
    sessions_end(user=admin_user)
    sessions_end(user=admin_user)
    client = Client()
    client.post(
        reverse("login"), {"username": "admin@acme.test", "password": "correct horse battery"}
    )
    assert client.get(reverse("contacts:list", args=[agent.public_id])).status_code == 200


@pytest.mark.django_db
def test_the_user_and_epoch_load_in_one_query(admin_user, django_assert_num_queries):
    sessions_end(user=admin_user)
    with django_assert_num_queries(1):
        user = EmailBackend().get_user(admin_user.pk)
        assert user.session_epoch == 1
        user.get_session_auth_hash()


@pytest.mark.django_db
def test_inactive_users_are_not_loaded(admin_user):
    User.objects.filter(pk=admin_user.pk).update(is_active=False)
    assert EmailBackend().get_user(admin_user.pk) is None
    assert EmailBackend().get_user(999999) is None


@pytest.mark.django_db
def test_a_rotated_secret_key_keeps_sessions_through_its_fallback(admin_user, agent, settings):
    sessions_end(user=admin_user)
    _, client = _session_of(admin_user)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key-for-this-test-only-0123456789"
    assert client.get(reverse("contacts:list", args=[agent.public_id])).status_code == 200
