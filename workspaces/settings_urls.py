"""The agent settings pages owned by this app (namespace "workspaces")."""

from django.urls import path

from workspaces import member_views, views

app_name = "workspaces"

urlpatterns = [
    path("a/<str:agent_public_id>/settings/", views.agent_settings, name="settings"),
    path(
        "a/<str:agent_public_id>/settings/api-keys/",
        views.api_key_create_view,
        name="api_key_create",
    ),
    path(
        "a/<str:agent_public_id>/settings/api-keys/<int:key_id>/revoke/",
        views.api_key_revoke_view,
        name="api_key_revoke",
    ),
    path("a/<str:agent_public_id>/settings/members/", member_views.members, name="members"),
    path(
        "a/<str:agent_public_id>/settings/members/invite/",
        member_views.member_invite,
        name="member_invite",
    ),
    path(
        "a/<str:agent_public_id>/settings/members/<int:membership_id>/role/",
        member_views.member_role,
        name="member_role",
    ),
    path(
        "a/<str:agent_public_id>/settings/members/<int:membership_id>/remove/",
        member_views.member_remove,
        name="member_remove",
    ),
    path(
        "a/<str:agent_public_id>/settings/invitations/<int:invitation_id>/reissue/",
        member_views.invitation_reissue_view,
        name="invitation_reissue",
    ),
    path(
        "a/<str:agent_public_id>/settings/invitations/<int:invitation_id>/revoke/",
        member_views.invitation_revoke_view,
        name="invitation_revoke",
    ),
]
