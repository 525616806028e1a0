from django.urls import path

from attributes import views

app_name = "attributes"

A = "a/<str:agent_public_id>/attributes/"
K = A + "<slug:key>/"

urlpatterns = [
    path(A, views.schema, name="schema"),
    path(A + "reorder/", views.reorder, name="reorder"),
    path(K + "edit/", views.edit, name="edit"),
    path(K + "archive/", views.archive, name="archive"),
    path(K + "restore/", views.restore, name="restore"),
    path(K + "move/", views.move, name="move"),
    path(K + "delete/", views.delete, name="delete"),
]
