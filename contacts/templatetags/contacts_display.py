"""Small display filters of the contacts pages."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

from contacts.table import ago_text, display_phone

register = template.Library()


@register.filter
def ago(value: datetime | None) -> str:
    """'just now', '5 minutes ago', '3 months ago' (the largest unit only)."""
    if not value:
        return ""
    return ago_text(value, timezone.now())


@register.filter
def phone(value: str | None) -> str:
    """A stored E.164 number as people read it: "+1 415-555-2671"."""
    return display_phone(value or "")
