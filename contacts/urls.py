from django.urls import path

from contacts.views import contact as contact_views
from contacts.views import notes as note_views
from contacts.views import segments as segment_views
from contacts.views import table as views

app_name = "contacts"

A = "a/<str:agent_public_id>/contacts/"
C = A + "<uuid:contact_id>/"

urlpatterns = [
    path(A, views.contact_list, name="list"),
    path(A + "table-settings/", views.table_settings, name="table_settings"),
    path(A + "segments/", segment_views.segment_create_view, name="segment_create"),
    path(
        A + "segments/<int:segment_id>/", segment_views.segment_change_view, name="segment_change"
    ),
    path(
        A + "segments/<int:segment_id>/count/",
        segment_views.segment_count_view,
        name="segment_count",
    ),
    path(A + "new/", contact_views.contact_new, name="new"),
    path(A + "merge/", contact_views.contact_merge_view, name="merge"),
    path(C, contact_views.contact_detail, name="detail"),
    path(C + "edit/", contact_views.contact_edit, name="edit"),
    path(C + "tags/", contact_views.contact_tags, name="tags"),
    path(C + "tags/suggestions/", contact_views.contact_tag_suggestions, name="tag_suggestions"),
    path(C + "stripe/", contact_views.stripe_add, name="stripe_add"),
    path(C + "stripe/<int:account_id>/", contact_views.stripe_change, name="stripe_change"),
    path(C + "delete/", contact_views.contact_delete, name="delete"),
    path(C + "restore/", contact_views.contact_restore_view, name="restore"),
    path(C + "erase/", contact_views.contact_erase_view, name="erase"),
    path(C + "data/", contact_views.contact_data, name="data"),
    path(C + "notes/", note_views.note_add, name="notes"),
    path(C + "notes/<int:note_id>/", note_views.note_change, name="note"),
    path(C + "merge-with/", contact_views.contact_merge_with, name="merge_with"),
]
