"""Django admin for operators (and the benchmark's baseline: a stock changelist over the
same table with the same search fields as the dashboard)."""

from __future__ import annotations

from django.contrib import admin

from contacts.models import AuditEvent, Contact, Tag


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "phone", "external_id", "identity", "created_at")
    list_filter = ("identity",)
    search_fields = ("name", "email", "phone", "external_id")
    ordering = ("-created_at",)
    list_per_page = 50
    raw_id_fields = ("agent",)
    readonly_fields = ("search_text",)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "agent", "created_at")
    search_fields = ("name",)
    raw_id_fields = ("agent",)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("action", "contact_id", "channel", "actor_label", "created_at")
    list_filter = ("action", "channel")
    raw_id_fields = ("agent", "actor_user")
