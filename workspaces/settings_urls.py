"""The agent settings pages owned by this app (namespace "workspaces")."""

from django.urls import path

from workspaces import views

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
]
