from django.urls import path

from helpdesk import views, widget

app_name = "helpdesk"

urlpatterns = [
    path("a/<str:agent_public_id>/inbox/", views.inbox, name="inbox"),
    path(
        "a/<str:agent_public_id>/inbox/<uuid:conversation_id>/",
        views.conversation_detail,
        name="conversation",
    ),
    path(
        "a/<str:agent_public_id>/inbox/<uuid:conversation_id>/reply/",
        views.conversation_reply,
        name="reply",
    ),
    path(
        "a/<str:agent_public_id>/inbox/<uuid:conversation_id>/status/",
        views.conversation_status,
        name="status",
    ),
    path(
        "a/<str:agent_public_id>/contacts/<uuid:contact_id>/conversations/",
        views.contact_conversations,
        name="contact_conversations",
    ),
    # Widget (public, CORS): paths exactly as in docs/ARCHITECTURE.md, without a trailing slash.
    path(
        "widget/v1/<str:agent_public_id>/conversations",
        widget.conversations,
        name="widget-conversations",
    ),
    path(
        "widget/v1/<str:agent_public_id>/conversations/<str:conversation_id>/messages",
        widget.messages,
        name="widget-messages",
    ),
]
