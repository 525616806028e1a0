"""Settings → Webhooks, under the agent's settings (namespace "webhooks")."""

from django.urls import path

from webhooks import views

app_name = "webhooks"

ENDPOINT = "a/<str:agent_public_id>/settings/webhooks/<uuid:endpoint_id>/"
DELIVERY = f"{ENDPOINT}deliveries/<uuid:delivery_id>/"

urlpatterns = [
    path("a/<str:agent_public_id>/settings/webhooks/", views.endpoints, name="endpoints"),
    path(
        "a/<str:agent_public_id>/settings/webhooks/new/",
        views.endpoint_create_view,
        name="endpoint_create",
    ),
    path(ENDPOINT, views.endpoint_detail, name="endpoint"),
    path(f"{ENDPOINT}edit/", views.endpoint_update_view, name="endpoint_update"),
    path(f"{ENDPOINT}enabled/", views.endpoint_enabled_view, name="endpoint_enabled"),
    path(f"{ENDPOINT}rotate/", views.endpoint_rotate_view, name="endpoint_rotate"),
    path(f"{ENDPOINT}delete/", views.endpoint_delete_view, name="endpoint_delete"),
    path(f"{ENDPOINT}test/", views.endpoint_test_view, name="endpoint_test"),
    path(DELIVERY, views.delivery_detail, name="delivery"),
    path(f"{DELIVERY}resend/", views.delivery_resend_view, name="delivery_resend"),
]
