"""Conversation routes of the API (included in config/api_urls.py, namespace "api")."""

from django.urls import path

from helpdesk import api

urlpatterns = [
    path(
        "conversations/<str:conversation_id>/context",
        api.conversation_context,
        name="conversation-context",
    ),
    path(
        "conversations/<str:conversation_id>/render",
        api.conversation_render,
        name="conversation-render",
    ),
    path(
        "conversations/<str:conversation_id>/messages",
        api.conversation_messages,
        name="conversation-messages",
    ),
    path(
        "conversations/<str:conversation_id>/status",
        api.conversation_status,
        name="conversation-status",
    ),
]
