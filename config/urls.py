from django.contrib import admin
from django.urls import include, path, re_path

from workspaces.api_views import api_not_found

urlpatterns = [
    path("django-admin/", admin.site.urls),
    path("api/v1/", include(("config.api_urls", "api"))),
    re_path(r"^api/", api_not_found),
    path("", include("workspaces.urls")),
    path("", include("workspaces.settings_urls")),
    path("", include("contacts.urls")),
    path("", include("helpdesk.urls")),
    path("", include("identity.urls")),
    path("", include("attributes.urls")),
]
