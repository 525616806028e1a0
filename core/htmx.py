"""One URL, the full page or the fragment htmx asked for (the django-htmx-patterns way)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def wants_fragment(request: HttpRequest, target: str | None = None) -> bool:
    """An htmx request that will swap a fragment in (not a history restore, which needs the
    whole page); with `target`, only when it targets that element id."""
    htmx = getattr(request, "htmx", None)
    if not htmx or htmx.history_restore_request:
        return False
    return target is None or htmx.target == target


def render_page_or_fragment(
    request: HttpRequest,
    template: str,
    partial: str,
    context: dict[str, Any],
    *,
    target: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """`template#partial` for an htmx swap, else the whole `template`."""
    name = f"{template}#{partial}" if wants_fragment(request, target) else template
    return render(request, name, context, status=status)
