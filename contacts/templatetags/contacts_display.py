"""Small display filters of the contacts pages."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

from contacts.table import ago_text

register = template.Library()


@register.filter
def ago(value: datetime | None) -> str:
    """'just now', '5 minutes ago', '3 months ago' (the largest unit only)."""
    if not value:
        return ""
    return ago_text(value, timezone.now())
