from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from core.api.views import api_not_found
from core.health import healthz, metrics_view, readyz
from workspaces.views import admin_login

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    # The widget's identify is the busiest endpoint: resolved before the dashboard's patterns.
    path("", include("identity.urls")),
    path("api/v1/", include(("config.api_urls", "api"))),
    re_path(r"^api/", api_not_found),
    path("", include("workspaces.urls")),
    path("", include("workspaces.settings_urls")),
    path("", include("transfers.urls")),
    path("", include("contacts.urls")),
    path("", include("helpdesk.urls")),
    path("", include("attributes.urls")),
    path("", include("webhooks.urls")),
]

# Django's admin is a developer's tool: served in development, and in production only when
# DJANGO_ADMIN_ENABLED says so. Its sign-in goes through the same throttle as ours.
if settings.DJANGO_ADMIN_ENABLED:
    urlpatterns = [
        path("django-admin/login/", admin_login, name="admin-login"),
        path("django-admin/", admin.site.urls),
        *urlpatterns,
    ]
