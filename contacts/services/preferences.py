"""A person's remembered contacts-table layout per agent."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from contacts.models import (
    TablePreference,
)
from core.errors import (
    ValidationFailed,
)
from workspaces.models import Agent


def table_preference_save(
    *, user: Any, agent: Agent, columns: list[str] | None = None, page_size: int | None = None
) -> TablePreference:
    """Remember a person's contacts-table columns and/or rows per page for this agent."""
    from contacts.table import MAX_COLUMNS, PAGE_SIZES

    if page_size is not None and page_size not in PAGE_SIZES:
        raise ValidationFailed(
            {"per_page": [f"Choose {', '.join(str(s) for s in PAGE_SIZES)} rows per page."]}
        )
    if columns is not None and (
        len(columns) > MAX_COLUMNS or any(not isinstance(c, str) or len(c) > 80 for c in columns)
    ):
        raise ValidationFailed({"cols": ["Too many or malformed columns."]})
    with transaction.atomic():
        preference, _ = TablePreference.objects.select_for_update().get_or_create(
            user=user, agent=agent
        )
        if columns is not None:
            preference.columns = list(columns)
        if page_size is not None:
            preference.page_size = page_size
        preference.updated_at = timezone.now()
        preference.save()
        return preference
