from django.urls import path

from identity import views

app_name = "identity"

urlpatterns = [
    # Public widget endpoints (CORS, no cookies): see docs/ARCHITECTURE.md.
    path("widget/v1/<str:agent_public_id>/identify", views.identify, name="identify"),
    path(
        "widget/v1/<str:agent_public_id>/identity-token",
        views.identity_token,
        name="identity_token",
    ),
    # Dashboard (admins).
    path(
        "a/<str:agent_public_id>/settings/identity/",
        views.identity_settings,
        name="settings",
    ),
    # Demo host page (development only: WIDGET_DEMO_ENABLED).
    path("demo/widget/", views.demo_widget, name="demo"),
    path("demo/widget/sign", views.demo_sign, name="demo_sign"),
]
