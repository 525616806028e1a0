"""Saved segments as queries: which segments a person or an API key sees, a table state as
the query string a segment keeps, and a segment's contacts through the one filter language.

A segment stores the table's own query string (conditions, match, search, tags, identity,
last-seen window, deleted view, ordering, columns) without paging, so opening one is
following a link and the API reads the same syntax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.http import QueryDict

from attributes.models import AttributeDefinition
from contacts.models import Contact, Segment
from contacts.query.filterset import ContactFilterSet
from core.errors import ValidationFailed
from workspaces.models import Agent

# Not part of a saved state: where a page starts, how many rows it shows, the segment itself.
UNSAVED_KEYS = ("cursor", "at", "per_page", "segment")
# The largest id a segment can have (a bigint); anything else is not an id.
MAX_SEGMENT_ID = 2**63 - 1


def parse_segment_id(value: Any) -> int | None:
    """The segment id in a parameter, or None when it cannot be one."""
    text = str(value if value is not None else "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if 1 <= number <= MAX_SEGMENT_ID else None


def segments_visible(*, agent: Agent, user) -> list[Segment]:
    """The segments `user` sees on `agent`: every shared one and their own, by name."""
    return list(
        Segment.objects.filter(agent=agent)
        .filter(Q(shared=True) | Q(owner=user))
        .select_related("owner")
        .order_by(Lower("name"), "id")
    )


def segment_for_user(*, agent: Agent, user, segment_id: Any) -> Segment:
    """One segment `user` may open; Segment.DoesNotExist for another's private one, another
    agent's, or an id that is not one."""
    pk = parse_segment_id(segment_id)
    if pk is None:
        raise Segment.DoesNotExist
    return (
        Segment.objects.filter(agent=agent, pk=pk)
        .filter(Q(shared=True) | Q(owner=user))
        .select_related("owner")
        .get()
    )


def segments_shared(*, agent: Agent) -> QuerySet[Segment]:
    """The agent's shared segments by name (what an API key sees: it has no user)."""
    return Segment.objects.filter(agent=agent, shared=True).order_by(Lower("name"), "id")


def segment_params(segment: Segment) -> QueryDict:
    return QueryDict(segment.query)


def segment_query(params: Mapping[str, Any]) -> str:
    """A table state as a segment keeps it: the parameters in order, without paging."""
    out = QueryDict(mutable=True)
    getlist = params.getlist if hasattr(params, "getlist") else lambda k: [params[k]]
    for key in params:
        if key in UNSAVED_KEYS:
            continue
        values = [str(v) for v in getlist(key) if str(v).strip()]
        if values:
            out.setlist(key, values)
    return out.urlencode()


def same_state(query: str, other: str) -> bool:
    """Whether two saved states select and show the same (the order of parameters aside)."""
    return sorted(QueryDict(query).lists()) == sorted(QueryDict(other).lists())


def segment_filters(
    *,
    segment: Segment,
    agent: Agent,
    definitions: Mapping[str, AttributeDefinition],
    params: Mapping[str, Any],
    queryset: QuerySet[Contact],
) -> ContactFilterSet:
    """The segment's contacts narrowed by the request's own filters (both apply: its
    `match` combines its conditions, the request's combines the request's). The request's
    `ordering` and `deleted` replace the segment's. ValidationFailed names a bad request
    parameter, or `segment` when the saved state no longer applies (an attribute deleted
    since)."""
    stored = segment_params(segment).copy()
    request = QueryDict(mutable=True)
    for key in params:
        request.setlist(key, params.getlist(key) if hasattr(params, "getlist") else [params[key]])
    for key in ("ordering", "deleted"):
        if key in request:
            stored.setlist(key, request.getlist(key))
        elif key in stored:
            request.setlist(key, stored.getlist(key))
    saved = ContactFilterSet(stored, agent=agent, definitions=definitions, queryset=queryset)
    problems = saved.all_errors
    if problems:
        raise ValidationFailed(
            {
                "segment": [
                    f"The segment “{segment.name}” no longer applies: {name}: {message}"
                    for name, messages in problems.items()
                    for message in messages
                ]
            }
        )
    return ContactFilterSet(
        request, agent=agent, definitions=definitions, queryset=saved.qs
    ).validated()
