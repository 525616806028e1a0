"""Settings → Members: the list, invitations, roles and removals, as admins and staff see
them; every POST re-checks the role and the workspace, and signs people out at once."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import AgentFactory, MembershipFactory, UserFactory, WorkspaceFactory
from tests.helpers import agent_url
from workspaces.invitations import invitation_create
from workspaces.models import (
    Invitation,
    Membership,
    WorkspaceEvent,
    hash_invitation_token,
)

pytestmark = pytest.mark.django_db

LINK = re.compile(r'id="invitation-link"[^>]*value="([^"]+)"')


def members_url(agent) -> str:
    return agent_url("workspaces:members", agent)


def member_url(name: str, agent, membership) -> str:
    return agent_url(f"workspaces:member_{name}", agent, membership_id=membership.pk)


def invitation_url(name: str, agent, invitation) -> str:
    return agent_url(f"workspaces:invitation_{name}", agent, invitation_id=invitation.pk)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def is_signed_in(client: Client, agent) -> bool:
    response = client.get(reverse("contacts:list", kwargs={"agent_public_id": agent.public_id}))
    return response.status_code == 200


def member(workspace, email: str, role=Membership.Role.STAFF, **user_fields) -> Membership:
    user = UserFactory(username=email, **user_fields)
    return MembershipFactory(user=user, workspace=workspace, role=role)


def events(workspace) -> list[tuple[str, str, str]]:
    return list(
        WorkspaceEvent.objects.filter(workspace=workspace)
        .order_by("id")
        .values_list("action", "actor_email", "target_email")
    )


# --- The page ---------------------------------------------------------------------------------


def test_admins_see_members_admins_first_then_by_name_with_role_and_last_sign_in(
    admin_client, admin_user, agent, workspace
):
    member(workspace, "zoe@acme.test", first_name="Zoe", last_name="Adams")
    member(workspace, "bob@acme.test", first_name="Bob", last_name="Young")
    nameless = member(workspace, "carl@acme.test")
    member(workspace, "amy@acme.test", Membership.Role.ADMIN, first_name="Amy", last_name="Zed")
    nameless.user.last_login = timezone.now() - timedelta(hours=3)
    nameless.user.save(update_fields=["last_login"])

    html = admin_client.get(members_url(agent)).content.decode()
    names = [unescape(n) for n in re.findall(r'class="cell-main member-name">([^<]+)<', html)]
    # admin@acme.test has no name: its email stands in, and sorts by it.
    assert names == ["admin@acme.test", "Amy Zed", "Bob Young", "carl@acme.test", "Zoe Adams"]
    assert "3\xa0hours ago" in html
    assert "Never" in html  # Bob and Zoe never signed in
    assert '<span class="badge badge-you">You</span>' in html
    assert 'aria-current="page">Members</a>' in html


def test_the_page_reads_a_fixed_number_of_queries_whatever_the_member_count(
    admin_client, admin_user, agent, workspace, django_assert_num_queries
):
    def fill(count: int, offset: int) -> None:
        for i in range(count):
            member(workspace, f"m{offset + i}@acme.test", first_name=f"M{offset + i}")
            invitation_create(
                workspace=workspace,
                email=f"i{offset + i}@acme.test",
                role="staff",
                invited_by=admin_user,
            )

    fill(2, 0)
    admin_client.get(members_url(agent))  # warm the session
    # session, user (with its session epoch), agent, membership, members, invitations,
    # activity, the agent switcher
    with django_assert_num_queries(8) as few:
        assert admin_client.get(members_url(agent)).status_code == 200
    fill(20, 100)
    with django_assert_num_queries(len(few.captured_queries)):
        response = admin_client.get(members_url(agent))
    assert response.content.decode().count('class="cell-main member-name"') == 23
    assert response.content.decode().count('class="cell-main invitation-email"') == 22


def test_staff_read_the_list_without_any_form_or_button(staff_client, admin_user, agent):
    response = staff_client.get(members_url(agent))
    assert response.status_code == 200
    html = response.content.decode()
    assert "admin@acme.test" in html
    assert "staff@acme.test" in html
    for hidden in ("<form method=\"post\" action=\"/a/", "Invite a member", "Pending invitations",
                   "Activity", "<select", "Remove", "Leave"):  # fmt: skip
        assert hidden not in html, hidden
    assert "Admins invite members" in html


def test_staff_reach_members_from_the_top_bar_and_see_only_that_tab(staff_client, agent):
    html = staff_client.get(members_url(agent)).content.decode()
    nav = html.split('aria-label="Sections"')[1].split("</nav>")[0]
    assert f'href="{members_url(agent)}" aria-current="page">Settings</a>' in nav
    tabs = html.split('aria-label="Settings"')[1].split("</nav>")[0]
    assert re.findall(r">([^<]+)</a>", tabs) == ["Members"]


def test_admins_get_a_members_tab_beside_the_other_settings(admin_client, agent):
    html = admin_client.get(agent_url("workspaces:settings", agent)).content.decode()
    tabs = html.split('aria-label="Settings"')[1].split("</nav>")[0]
    labels = [unescape(label) for label in re.findall(r">([^<]+)</a>", tabs)]
    assert labels[:2] == ["General & API keys", "Identity verification"]
    assert "Members" in labels


def test_names_and_emails_are_escaped(admin_client, agent, workspace):
    member(workspace, "x@acme.test", first_name="<script>alert(1)</script>")
    html = admin_client.get(members_url(agent)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_another_workspace_is_a_404_and_shows_nothing(admin_client, other_agent):
    outsider = UserFactory(username="secret@globex.test")
    MembershipFactory(user=outsider, workspace=other_agent.workspace, role="admin")
    response = admin_client.get(members_url(other_agent))
    assert response.status_code == 404
    assert b"secret@globex.test" not in response.content


def test_signed_out_visitors_are_sent_to_sign_in(agent):
    response = Client().get(members_url(agent))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- Access to every POST -------------------------------------------------------------------


def test_staff_posts_are_refused_and_change_nothing(
    staff_client, staff_user, admin_user, agent, workspace
):
    invitation = invitation_create(
        workspace=workspace, email="new@acme.test", role="staff", invited_by=admin_user
    ).invitation
    admin = Membership.objects.get(user=admin_user)
    posts = [
        (agent_url("workspaces:member_invite", agent), {"email": "x@acme.test", "role": "admin"}),
        (member_url("role", agent, admin), {"role": "staff"}),
        (member_url("remove", agent, admin), {"confirm": "yes"}),
        (invitation_url("revoke", agent, invitation), {}),
        (invitation_url("reissue", agent, invitation), {}),
    ]
    before = events(workspace)
    for url, data in posts:
        assert staff_client.post(url, data).status_code == 403, url
    # Staff cannot promote themselves either.
    own = Membership.objects.get(user=staff_user)
    assert staff_client.post(member_url("role", agent, own), {"role": "admin"}).status_code == 403
    assert Membership.objects.get(pk=own.pk).role == "staff"
    assert Membership.objects.get(pk=admin.pk).role == "admin"
    assert Invitation.objects.get(pk=invitation.pk).is_open
    assert Invitation.objects.count() == 1
    assert events(workspace) == before


def test_another_workspaces_member_and_invitation_ids_are_404(
    admin_client, admin_user, agent, other_agent
):
    foreign = member(other_agent.workspace, "them@globex.test")
    foreign_invite = invitation_create(
        workspace=other_agent.workspace, email="new@globex.test", role="staff", invited_by=None
    ).invitation
    for url, data in [
        (member_url("role", agent, foreign), {"role": "admin"}),
        (member_url("remove", agent, foreign), {"confirm": "yes"}),
        (invitation_url("revoke", agent, foreign_invite), {}),
        (invitation_url("reissue", agent, foreign_invite), {}),
        (
            agent_url("workspaces:member_invite", other_agent),
            {"email": "a@b.test", "role": "staff"},
        ),
    ]:
        assert admin_client.post(url, data).status_code == 404, url
    assert Membership.objects.get(pk=foreign.pk).role == "staff"
    assert Invitation.objects.get(pk=foreign_invite.pk).is_open
    assert not Invitation.objects.filter(email="a@b.test").exists()


def test_actions_refuse_the_wrong_method(admin_client, admin_user, agent):
    admin = Membership.objects.get(user=admin_user)
    assert admin_client.get(agent_url("workspaces:member_invite", agent)).status_code == 405
    assert admin_client.post(members_url(agent)).status_code == 405
    invitation = invitation_create(
        workspace=admin.workspace, email="n@acme.test", role="staff", invited_by=admin_user
    ).invitation
    assert admin_client.get(invitation_url("revoke", agent, invitation)).status_code == 405
    assert admin_client.get(invitation_url("reissue", agent, invitation)).status_code == 405
    # A role link opened by hand leads back to the page; nothing changes.
    response = admin_client.get(member_url("role", agent, admin))
    assert response.status_code == 302
    assert Membership.objects.get(pk=admin.pk).role == "admin"


def test_forms_need_the_csrf_token(admin_user, agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(
        agent_url("workspaces:member_invite", agent), {"email": "x@acme.test", "role": "staff"}
    )
    assert response.status_code == 403
    assert not Invitation.objects.exists()


# --- Inviting ------------------------------------------------------------------------------------


def test_an_invitation_shows_its_link_once_and_keeps_only_a_hash(
    admin_client, admin_user, agent, workspace, settings
):
    settings.EMAIL_ENABLED = False
    response = admin_client.post(
        agent_url("workspaces:member_invite", agent),
        {"email": " New.Person@Acme.TEST ", "role": "admin"},
    )
    assert response.status_code == 302
    assert response["Location"] == members_url(agent) + "#new-invitation"

    page = admin_client.get(members_url(agent))
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    link = LINK.search(html).group(1)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert link == f"http://testserver/invitations/{token}/"
    invitation = Invitation.objects.get()
    assert invitation.email == "new.person@acme.test"
    assert invitation.role == "admin"
    assert invitation.token_hash == hash_invitation_token(token)
    assert token not in str(Invitation.objects.values().get())
    assert invitation.invited_by == admin_user
    days = (invitation.expires_at - invitation.issued_at).days
    assert days == settings.INVITATION_MAX_AGE_DAYS == 7
    # No mail server: nothing is sent, and the page says to copy the link.
    assert mail.outbox == []
    assert "this server sends no email" in html
    assert events(workspace) == [("invitation.created", "admin@acme.test", "new.person@acme.test")]
    assert WorkspaceEvent.objects.get().details == {"role": "admin"}
    # The link is shown once.
    again = admin_client.get(members_url(agent)).content.decode()
    assert token not in again
    assert "new.person@acme.test" in again  # listed under pending invitations
    assert "invited admin@acme.test" not in again
    assert "invited new.person@acme.test as Admin" in again  # the activity log


def test_with_a_mail_server_the_link_is_also_emailed(admin_client, agent, settings):
    settings.EMAIL_ENABLED = True
    admin_client.post(
        agent_url("workspaces:member_invite", agent), {"email": "sam@acme.test", "role": "staff"}
    )
    html = admin_client.get(members_url(agent)).content.decode()
    link = LINK.search(html).group(1)
    assert "It was emailed to sam@acme.test" in html
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["sam@acme.test"]
    assert sent.subject == "admin@acme.test invited you to Acme on Rapport"
    assert link in sent.body
    assert "as Staff" in sent.body


def test_a_mail_server_that_fails_still_leaves_the_link_to_copy(
    admin_client, agent, settings, monkeypatch
):
    settings.EMAIL_ENABLED = True

    def refuse(self, fail_silently=False):
        raise OSError("Connection refused")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    admin_client.post(
        agent_url("workspaces:member_invite", agent), {"email": "sam@acme.test", "role": "staff"}
    )
    html = admin_client.get(members_url(agent)).content.decode()
    assert "The email could not be sent." in html
    assert LINK.search(html)
    assert Invitation.objects.get().is_open


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "not an email", "role": "staff"}, "email", "Enter a valid email address."),
        ({"email": "", "role": "staff"}, "email", "This field is required."),
        ({"email": "a@acme.test", "role": "owner"}, "role", "Select a valid choice."),
    ],
)
def test_bad_input_is_refused_beside_its_field(admin_client, agent, data, field, message):
    response = admin_client.post(agent_url("workspaces:member_invite", agent), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html
    assert message in html
    assert not Invitation.objects.exists()
    assert not WorkspaceEvent.objects.exists()


def test_inviting_a_member_is_a_clear_error(admin_client, agent, workspace):
    member(workspace, "sam@acme.test")
    response = admin_client.post(
        agent_url("workspaces:member_invite", agent), {"email": "SAM@acme.test", "role": "admin"}
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "sam@acme.test is already a member of Acme (Staff)." in html
    assert 'id="id_email_error"' in html
    assert not Invitation.objects.exists()
    assert not WorkspaceEvent.objects.exists()


def test_inviting_the_same_address_again_replaces_the_open_invitation(
    admin_client, admin_user, agent, workspace
):
    first = invitation_create(
        workspace=workspace, email="sam@acme.test", role="staff", invited_by=admin_user
    )
    admin_client.post(
        agent_url("workspaces:member_invite", agent), {"email": "Sam@acme.test", "role": "admin"}
    )
    html = admin_client.get(members_url(agent)).content.decode()
    assert "already had a pending invitation: this link replaces it" in html
    new_token = LINK.search(html).group(1).rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get()
    assert invitation.role == "admin"
    assert invitation.token_hash == hash_invitation_token(new_token)
    assert Client().get(reverse("invitation_accept", args=[first.raw_token])).status_code == 404
    assert Client().get(reverse("invitation_accept", args=[new_token])).status_code == 200
    assert [e[0] for e in events(workspace)] == ["invitation.created", "invitation.reissued"]
    assert WorkspaceEvent.objects.last().details == {
        "role": "admin",
        "replaced": True,
        "previous_role": "staff",
    }


def test_revoking_stops_the_link_at_once(admin_client, admin_user, agent, workspace):
    new = invitation_create(
        workspace=workspace, email="sam@acme.test", role="staff", invited_by=admin_user
    )
    response = admin_client.post(invitation_url("revoke", agent, new.invitation))
    assert response.status_code == 302
    assert Invitation.objects.get().revoked_at is not None
    page = Client().get(reverse("invitation_accept", args=[new.raw_token]))
    assert page.status_code == 410
    assert b"This invitation was withdrawn" in page.content
    assert events(workspace)[-1] == ("invitation.revoked", "admin@acme.test", "sam@acme.test")
    listed = admin_client.get(members_url(agent)).content.decode()
    assert "Invitation to sam@acme.test revoked" in listed
    assert 'class="cell-main invitation-email"' not in listed
    # Revoking again changes nothing and logs nothing more.
    admin_client.post(invitation_url("revoke", agent, new.invitation))
    assert len(events(workspace)) == 2


def test_a_new_link_replaces_the_old_one_and_restarts_the_clock(
    admin_client, admin_user, agent, workspace
):
    new = invitation_create(
        workspace=workspace, email="sam@acme.test", role="staff", invited_by=admin_user
    )
    Invitation.objects.update(expires_at=timezone.now() - timedelta(days=1))
    listed = admin_client.get(members_url(agent)).content.decode()
    assert "Expired" in listed
    response = admin_client.post(invitation_url("reissue", agent, new.invitation))
    assert response.status_code == 302
    html = admin_client.get(members_url(agent)).content.decode()
    token = LINK.search(html).group(1).rstrip("/").rsplit("/", 1)[1]
    assert token != new.raw_token
    invitation = Invitation.objects.get()
    assert invitation.expires_at > timezone.now() + timedelta(days=6)
    assert Client().get(reverse("invitation_accept", args=[new.raw_token])).status_code == 404
    assert Client().get(reverse("invitation_accept", args=[token])).status_code == 200
    assert events(workspace)[-1] == ("invitation.reissued", "admin@acme.test", "sam@acme.test")


def test_an_accepted_invitation_can_be_neither_revoked_nor_reissued(
    admin_client, admin_user, agent, workspace
):
    new = invitation_create(
        workspace=workspace, email="sam@acme.test", role="staff", invited_by=admin_user
    )
    Invitation.objects.update(accepted_at=timezone.now())
    for action in ("revoke", "reissue"):
        response = admin_client.post(invitation_url(action, agent, new.invitation))
        assert response.status_code == 410, action
        assert b"already accepted" in response.content
    assert Invitation.objects.get().revoked_at is None
    assert len(events(workspace)) == 1


# --- Roles ---------------------------------------------------------------------------------------


def test_a_role_change_applies_at_once_and_signs_the_member_out(admin_client, agent, workspace):
    sam = member(workspace, "sam@acme.test")
    sams_browser = signed_in(sam.user)
    sams_phone = signed_in(sam.user)
    assert is_signed_in(sams_browser, agent)

    response = admin_client.post(member_url("role", agent, sam), {"role": "admin"})
    assert response.status_code == 302
    assert Membership.objects.get(pk=sam.pk).role == "admin"
    follow = admin_client.get(members_url(agent)).content.decode()
    assert "sam@acme.test is now Admin" in follow
    assert "changed the role of sam@acme.test from Staff to Admin" in follow
    assert events(workspace) == [("member.role_changed", "admin@acme.test", "sam@acme.test")]
    assert WorkspaceEvent.objects.get().details == {"from": "staff", "to": "admin"}
    for client in (sams_browser, sams_phone):
        assert not is_signed_in(client, agent)
    # Signing in again works, with the new role.
    again = Client()
    again.post(reverse("login"), {"username": "sam@acme.test", "password": "correct horse battery"})
    assert again.get(agent_url("workspaces:settings", agent)).status_code == 200


def test_the_same_role_again_changes_nothing(admin_client, agent, workspace):
    sam = member(workspace, "sam@acme.test")
    sams_browser = signed_in(sam.user)
    admin_client.post(member_url("role", agent, sam), {"role": "staff"})
    assert not WorkspaceEvent.objects.exists()
    assert is_signed_in(sams_browser, agent)


def test_an_unknown_role_is_refused(admin_client, agent, workspace):
    sam = member(workspace, "sam@acme.test")
    response = admin_client.post(member_url("role", agent, sam), {"role": "owner"})
    assert response.status_code == 400
    assert b"Role: Select a valid choice." in response.content
    assert Membership.objects.get(pk=sam.pk).role == "staff"


def test_the_last_admin_cannot_be_made_staff(admin_client, admin_user, agent, workspace):
    own = Membership.objects.get(user=admin_user)
    response = admin_client.post(
        member_url("role", agent, own), {"role": "staff", "confirm": "yes"}
    )
    assert response.status_code == 409
    assert (
        "You are the only admin of this workspace, which always keeps one: make another "
        "member an admin first, then change this role." in response.content.decode()
    )
    assert Membership.objects.get(pk=own.pk).role == "admin"
    assert not WorkspaceEvent.objects.exists()
    assert is_signed_in(admin_client, agent)
    # The page shows why there is no control on that row.
    html = admin_client.get(members_url(agent)).content.decode()
    assert "A workspace always keeps an admin: to change the only admin's role" in html.replace(
        "&#x27;", "'"
    )
    assert "Only admin</div>" in html
    assert f'id="role-{own.pk}"' not in html


def test_making_yourself_staff_asks_first_and_keeps_you_signed_in_here(
    admin_client, admin_user, agent, workspace
):
    member(workspace, "other-admin@acme.test", Membership.Role.ADMIN)
    own = Membership.objects.get(user=admin_user)
    elsewhere = signed_in(admin_user)

    ask = admin_client.post(member_url("role", agent, own), {"role": "staff"})
    assert ask.status_code == 200
    assert b"Make yourself Staff?" in ask.content
    assert Membership.objects.get(pk=own.pk).role == "admin"

    done = admin_client.post(member_url("role", agent, own), {"role": "staff", "confirm": "yes"})
    assert done.status_code == 302
    assert Membership.objects.get(pk=own.pk).role == "staff"
    page = admin_client.get(members_url(agent))
    assert page.status_code == 200  # still signed in here, now reading as staff
    assert b"You are now Staff of Acme" in page.content
    assert b"Invite a member" not in page.content
    assert not is_signed_in(elsewhere, agent)


# --- Removing ------------------------------------------------------------------------------------


def test_a_removed_member_is_signed_out_on_their_next_request(admin_client, agent, workspace):
    sam = member(workspace, "sam@acme.test", first_name="Sam")
    sams_browser = signed_in(sam.user)
    assert is_signed_in(sams_browser, agent)

    response = admin_client.post(member_url("remove", agent, sam))
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=sam.pk).exists()
    next_request = sams_browser.get(reverse("contacts:list", args=[agent.public_id]))
    assert next_request.status_code == 302
    assert next_request["Location"].startswith(reverse("login"))
    assert "_auth_user_id" not in sams_browser.session
    assert events(workspace) == [("member.removed", "admin@acme.test", "sam@acme.test")]
    assert WorkspaceEvent.objects.get().details == {"role": "staff"}
    html = admin_client.get(members_url(agent)).content.decode()
    assert "sam@acme.test was removed from Acme and signed out everywhere." in html
    assert "removed sam@acme.test (Staff)" in html


def test_removing_asks_first_without_javascript(admin_client, agent, workspace):
    sam = member(workspace, "sam@acme.test")
    page = admin_client.get(member_url("remove", agent, sam))
    assert page.status_code == 200
    assert b"Remove sam@acme.test from Acme?" in page.content
    assert Membership.objects.filter(pk=sam.pk).exists()


def test_removing_a_member_of_two_workspaces_keeps_the_other(admin_client, agent, workspace):
    sam = member(workspace, "sam@acme.test")
    elsewhere = WorkspaceFactory(name="Initech", slug="initech")
    MembershipFactory(user=sam.user, workspace=elsewhere, role="admin")
    admin_client.post(member_url("remove", agent, sam))
    assert list(Membership.objects.filter(user=sam.user).values_list("workspace", flat=True)) == [
        elsewhere.pk
    ]


def test_leaving_asks_for_confirmation_then_signs_you_out(
    admin_client, admin_user, agent, workspace
):
    member(workspace, "other-admin@acme.test", Membership.Role.ADMIN)
    own = Membership.objects.get(user=admin_user)
    html = admin_client.get(members_url(agent)).content.decode()
    assert f'href="{member_url("remove", agent, own)}">Leave…</a>' in html

    asked = admin_client.post(member_url("remove", agent, own))
    assert asked.status_code == 200
    assert b"Leave Acme?" in asked.content
    assert Membership.objects.filter(pk=own.pk).exists()

    left = admin_client.post(member_url("remove", agent, own), {"confirm": "yes"})
    assert left.status_code == 302
    assert left["Location"] == reverse("login")
    assert not Membership.objects.filter(pk=own.pk).exists()
    assert "_auth_user_id" not in admin_client.session
    assert events(workspace)[-1] == ("member.removed", "admin@acme.test", "admin@acme.test")
    assert WorkspaceEvent.objects.last().details == {"role": "admin", "self": True}


def test_the_last_admin_can_neither_leave_nor_be_removed(admin_client, admin_user, agent):
    own = Membership.objects.get(user=admin_user)
    response = admin_client.post(member_url("remove", agent, own), {"confirm": "yes"})
    assert response.status_code == 409
    assert b"You are the only admin of this workspace" in response.content
    assert Membership.objects.filter(pk=own.pk).exists()
    assert is_signed_in(admin_client, agent)
    assert not WorkspaceEvent.objects.exists()


def test_an_admin_removed_meanwhile_is_a_404(admin_client, agent, workspace):
    sam = member(workspace, "sam@acme.test")
    sam_id = sam.pk
    sam.delete()
    response = admin_client.post(agent_url("workspaces:member_remove", agent, membership_id=sam_id))
    assert response.status_code == 404


def test_a_second_workspace_agent_shows_the_same_members(admin_client, agent, workspace):
    second = AgentFactory(workspace=workspace, name="Billing")
    member(workspace, "sam@acme.test")
    html = admin_client.get(members_url(second)).content.decode()
    assert "sam@acme.test" in html
