from django.urls import path

from transfers import views

app_name = "transfers"

A = "a/<str:agent_public_id>/contacts/"
IMP = A + "import/<uuid:import_id>/"

urlpatterns = [
    path(A + "export/", views.contact_export, name="export"),
    path(A + "import/", views.import_upload, name="import"),
    path(IMP, views.import_job, name="import_job"),
    path(IMP + "action/", views.import_action, name="import_action"),
    path(IMP + "failed-rows/", views.import_failed_rows, name="import_failed_rows"),
    path(IMP + "report/", views.import_report, name="import_report"),
]
