from django.urls import path

from transfers import views
from transfers.bulk import selection
from transfers.bulk import views as bulk_views

app_name = "transfers"

A = "a/<str:agent_public_id>/contacts/"
IMP = A + "import/<uuid:import_id>/"

urlpatterns = [
    path(A + "export/", views.contact_export, name="export"),
    path(A + "bulk/", selection.contact_bulk, name="bulk"),
    path(A + "bulk-jobs/", bulk_views.bulk_job_panel, name="bulk_jobs"),
    path(A + "bulk-jobs/<uuid:job_id>/", bulk_views.bulk_job_action, name="bulk_job"),
    path(A + "import/", views.import_upload, name="import"),
    path(IMP, views.import_job, name="import_job"),
    path(IMP + "action/", views.import_action, name="import_action"),
    path(IMP + "failed-rows/", views.import_failed_rows, name="import_failed_rows"),
    path(IMP + "report/", views.import_report, name="import_report"),
]
