"""Routes of the REST API, mounted at /api/v1/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from attributes import api as attributes_api
from contacts import api as contacts_api
from helpdesk import api as helpdesk_api
from identity import api as identity_api
from transfers import api as transfers_api
from webhooks import api as webhooks_api
from workspaces import api_views

urlpatterns = [
    path("agent/", api_views.agent_detail, name="agent"),
    path("", include("helpdesk.api_urls")),
    # Contacts. Fixed paths (bulk/, ensure/, merge/, export/) never collide with ids: those
    # routes take a <uuid:…>.
    path("contacts/", contacts_api.ContactCollection.as_view(), name="contacts"),
    path("contacts/bulk/", contacts_api.ContactBulk.as_view(), name="contacts-bulk"),
    path("contacts/ensure/", contacts_api.ContactEnsure.as_view(), name="contacts-ensure"),
    path("contacts/merge/", contacts_api.ContactMerge.as_view(), name="contacts-merge"),
    path("contacts/export/", transfers_api.ContactExport.as_view(), name="contacts-export"),
    path(
        "contacts/<uuid:contact_id>/",
        contacts_api.ContactDetail.as_view(),
        name="contact",
    ),
    path(
        "contacts/<uuid:contact_id>/restore/",
        contacts_api.ContactRestore.as_view(),
        name="contact-restore",
    ),
    path(
        "contacts/<uuid:contact_id>/erase/",
        contacts_api.ContactErase.as_view(),
        name="contact-erase",
    ),
    path(
        "contacts/<uuid:contact_id>/tags/",
        contacts_api.ContactTags.as_view(),
        name="contact-tags",
    ),
    path(
        "contacts/<uuid:contact_id>/tags/<path:tag>/",
        contacts_api.ContactTag.as_view(),
        name="contact-tag",
    ),
    path(
        "contacts/<uuid:contact_id>/conversations/",
        helpdesk_api.ContactConversations.as_view(),
        name="contact-conversations",
    ),
    path(
        "contacts/<uuid:contact_id>/identity-token",
        identity_api.ContactIdentityToken.as_view(),
        name="contact-identity-token",
    ),
    path("tags/", contacts_api.TagCollection.as_view(), name="tags"),
    path("segments/", contacts_api.SegmentCollection.as_view(), name="segments"),
    # Imports (background jobs).
    path("imports/", transfers_api.ImportCollection.as_view(), name="imports"),
    path("imports/<uuid:import_id>/", transfers_api.ImportDetail.as_view(), name="import"),
    path(
        "imports/<uuid:import_id>/start/",
        transfers_api.ImportStart.as_view(),
        name="import-start",
    ),
    # The attribute schema.
    path("attributes/", attributes_api.AttributeCollection.as_view(), name="attributes"),
    path("attributes/<str:key>/", attributes_api.AttributeDetail.as_view(), name="attribute"),
    path(
        "attributes/<str:key>/archive/",
        attributes_api.AttributeArchive.as_view(),
        name="attribute-archive",
    ),
    path(
        "attributes/<str:key>/restore/",
        attributes_api.AttributeRestore.as_view(),
        name="attribute-restore",
    ),
    # Webhook endpoints and their delivery logs.
    path("webhooks/", webhooks_api.EndpointCollection.as_view(), name="webhooks"),
    path("webhooks/<uuid:endpoint_id>/", webhooks_api.EndpointDetail.as_view(), name="webhook"),
    path(
        "webhooks/<uuid:endpoint_id>/rotate-secret/",
        webhooks_api.EndpointRotateSecret.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        "webhooks/<uuid:endpoint_id>/test/",
        webhooks_api.EndpointTest.as_view(),
        name="webhook-test",
    ),
    path(
        "webhooks/<uuid:endpoint_id>/deliveries/",
        webhooks_api.DeliveryCollection.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/redeliver/",
        webhooks_api.DeliveryRedeliver.as_view(),
        name="webhook-redeliver",
    ),
    path(
        "schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="schema",
    ),
    path(
        "docs/",
        # The split view serves Swagger UI's start-up script as a file of its own
        # (docs/?script=): the Content-Security-Policy runs no inline script.
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", authentication_classes=[], permission_classes=[]
        ),
        name="docs",
    ),
]
