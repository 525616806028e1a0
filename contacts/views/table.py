"""Contacts dashboard: the table and the remembered layout.

One URL serves the full page or, for htmx, the `contact-table` partial. The bulk bar's
actions live in `transfers.bulk.selection`; the contact page, editing, tags, Stripe accounts,
deletion and merging in `contacts.views.contact`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url

from attributes.selectors import attribute_definitions
from contacts import table as tbl
from contacts.models import Contact, Identity, Segment
from contacts.query.expressions import exact_matches
from contacts.query.filterset import SEEN_CHOICES, ContactFilterSet
from contacts.query.keyset import keyset_page
from contacts.query.segments import (
    UNSAVED_KEYS,
    parse_segment_id,
    same_state,
    segment_for_user,
    segment_query,
    segments_visible,
)
from contacts.selectors import (
    EXACT_COUNT_LIMIT,
    search_planned,
    table_count,
    table_preference_get,
    tag_names,
)
from contacts.serialization import tag_names_by_contact
from contacts.services import table_preference_save
from contacts.services.segments import segment_can_change
from contacts.tasks import sort_index_request
from contacts.views.common import detail_url_for, list_url, pop_notice
from core.htmx import render_page_or_fragment, wants_fragment
from workspaces.access import get_agent_access
from workspaces.selectors import AgentAccess

# Exact email / external id matches shown first for a search (more is not an exact match).
MAX_PINNED = 5


def table_context(request: HttpRequest, access: AgentAccess, raw: QueryDict) -> dict[str, Any]:
    """Everything the table template shows for the state in `raw` (a flat number of queries)."""
    agent = access.agent
    all_definitions = attribute_definitions(agent=agent, include_archived=True)
    definitions = [d for d in all_definitions if not d.archived]
    definition_map = {d.key: d for d in definitions}
    preference = table_preference_get(user=request.user, agent=agent)
    state = tbl.build_state(
        raw,
        definitions=definitions,
        remembered_columns=preference.columns if preference else None,
        remembered_page_size=preference.page_size if preference else None,
    )
    base = list_url(agent)
    # A wrong parameter is reported and left out instead of failing the page.
    filters, errors = ContactFilterSet(
        state.params, agent=agent, definitions=definition_map
    ).lenient()
    sort = filters.sort()
    state.ordering = sort.ordering

    qs = filters.qs
    rows_qs = qs
    pinned: list[Contact] = []
    if filters.search_text:
        # A pasted email or external id: its contact leads the first page, whatever the
        # order, and is not repeated on a later one.
        pinned = exact_matches(
            rows_qs,
            filters.search_text,
            agent=agent,
            limit=MAX_PINNED,
            deleted=filters.deleted_view,
        )
        rows_qs = rows_qs.exclude(pk__in=[c.pk for c in pinned]) if pinned else rows_qs
    cursor = state.params.get("cursor")
    # A substring search the planner expects to match no more contacts than an exact count
    # covers: the first page's scan of the trigram index also counts them (see
    # table_count). Above that a capped count reads only up to the cap, and the page's
    # query stays free to walk the sort index for its 51 rows.
    planned = search_planned(qs=qs, filters=filters)
    count = planned is not None and planned <= EXACT_COUNT_LIMIT
    try:
        page = keyset_page(rows_qs, sort, cursor=cursor, size=state.page_size, count=count)
    except ValueError as exc:
        errors = {**errors, "cursor": [str(exc)]}
        page = keyset_page(rows_qs, sort, cursor=None, size=state.page_size, count=count)
        cursor = None
    # A "previous" page that reaches the start is the first page again, pinned rows included.
    at_start = not cursor or page.previous_cursor is None
    items = (pinned if at_start else []) + page.items
    first = 1 if at_start else state.position
    last = first + len(items) - 1
    matched = None if page.matches is None else page.matches + len(pinned)
    total, exact = table_count(
        qs=qs, filters=filters, agent=agent, planned=planned, matched=matched
    )
    # A large agent sorted or filtered by an attribute: have its index built in the
    # background (once; see contacts.sort_indexes).
    if sort.ordering.lstrip("-").startswith("attr."):
        # Many rows to sort say the agent is large; few say nothing (a narrow filter).
        many = not exact or total > EXACT_COUNT_LIMIT
        definition = definition_map[sort.ordering.lstrip("-")[5:]]
        sort_index_request(definition, large=True if many else None)
    for definition in filters.filtered_attributes:
        sort_index_request(definition)

    shows_tags = any(c.key == "tags" for c in state.columns)
    tags = tag_names_by_contact([c.pk for c in items]) if shows_tags else {}
    rows = tbl.build_rows(items, state.columns, detail_url_for(agent), tags)
    chips = tbl.active_filter_chips(state, base, definition_map)
    chosen = {c.key for c in state.columns}
    export_params = state.params.copy()
    for key in ("cursor", "at", "per_page", "cols"):
        export_params.pop(key, None)
    return {
        "agent": agent,
        "base_url": base,
        "bulk_url": reverse("transfers:bulk", kwargs={"agent_public_id": agent.public_id}),
        "settings_url": reverse(
            "contacts:table_settings", kwargs={"agent_public_id": agent.public_id}
        ),
        "new_url": reverse("contacts:new", kwargs={"agent_public_id": agent.public_id}),
        "export_query": export_params.urlencode(),
        "form_hidden": _pairs(state.params, skip=("q", "identity", "seen", "cursor", "at")),
        "builder_hidden": _pairs(state.params, skip=("cursor", "at")),
        "match_hidden": _pairs(state.params, skip=("match", "cursor", "at")),
        "is_admin": access.is_admin,
        "state": state,
        "rows": rows,
        "headers": tbl.headers(state, base),
        "chips": chips,
        "filter_chips": [c for c in chips if not c.condition],
        "condition_chips": [c for c in chips if c.condition],
        "errors": errors,
        "total_text": tbl.format_estimate(total, exact),
        "total_exact": exact,
        "total": total,
        "shown": len(rows),
        "filtered": filters.is_filtered,
        "deleted_view": filters.deleted_view,
        "q": filters.search_text,
        "next_url": (
            state.url(base, cursor=page.next_cursor, at=last + 1) if page.next_cursor else ""
        ),
        "previous_url": (
            state.url(base, cursor=page.previous_cursor, at=max(1, first - state.page_size))
            if page.previous_cursor
            else ""
        ),
        "position_text": f"{first:,}–{last:,}" if items else "",
        "last_page": bool(items) and not page.next_cursor,
        "first_url": "" if at_start else state.url(base, cursor=None),
        "clear_url": base
        + tbl.querystring(
            QueryDict(mutable=True),
            deleted="true" if filters.deleted_view else None,
            ordering=state.params.get("ordering"),
            cols=state.params.get("cols"),
            per_page=state.params.get("per_page"),
        ),
        "live_url": state.url(base, deleted=None, cursor=None, ordering=None),
        "deleted_url": state.url(base, deleted="true", cursor=None, ordering=None),
        "page_sizes": tbl.PAGE_SIZES,
        "column_choices": [
            {"column": c, "checked": c.key in chosen} for c in tbl.available_columns(definitions)
        ],
        "identity_choices": Identity.choices,
        "identity_value": state.params.get("identity", ""),
        "seen_choices": [(k, tbl.SEEN_LABELS[k]) for k in SEEN_CHOICES],
        "seen_value": filters.seen_window,
        "tag_options": tag_names(agent=agent),
        "active_tags": filters.tags,
        "attribute_filters": definitions,
        "builder_fields": tbl.builder_fields(definitions),
        "operators": tbl.builder_operators(),
        "match_any": filters.match_any,
        "condition_count": len(
            [n for name in filters.condition_names for n in filters.data.getlist(name)]
        ),
        "notice": pop_notice(request, agent),
        "export_url": reverse("transfers:export", kwargs={"agent_public_id": agent.public_id}),
        "import_url": reverse("transfers:import", kwargs={"agent_public_id": agent.public_id}),
        "colspan": len(state.columns) + 2,
        **_segments_context(request, access, state, filters),
    }


def _segments_context(
    request: HttpRequest, access: AgentAccess, state: tbl.TableState, filters: ContactFilterSet
) -> dict[str, Any]:
    """The sidebar's segments, the one this state was opened from (if any), whether the
    state still is that segment's, and the state as a segment would keep it."""
    agent = access.agent
    base = list_url(agent)
    segments = segments_visible(agent=agent, user=request.user)
    active_id = parse_segment_id(state.params.get("segment"))
    active = next((s for s in segments if s.pk == active_id), None)
    # What "Save" keeps: the parameters that applied, with the sort and columns shown.
    current = filters.data.copy()
    current["ordering"] = state.ordering
    current["cols"] = ",".join(c.key for c in state.columns) or "none"
    saved = segment_query(current)
    items = [
        {
            "segment": segment,
            "url": f"{base}?segment={segment.pk}",
            "count_url": reverse(
                "contacts:segment_count",
                kwargs={"agent_public_id": agent.public_id, "segment_id": segment.pk},
            ),
            "mine": segment.owner_id == request.user.pk,
            "active": segment is active,
        }
        for segment in segments
    ]
    return {
        "shared_segments": [i for i in items if i["segment"].shared],
        "own_segments": [i for i in items if not i["segment"].shared],
        "active_segment": active,
        "segment_modified": active is not None and not same_state(active.query, saved),
        "segment_can_change": active is not None
        and segment_can_change(segment=active, user=request.user, is_admin=access.is_admin),
        "segment_is_mine": active is not None and active.owner_id == request.user.pk,
        "segment_query": saved,
        "segment_create_url": reverse(
            "contacts:segment_create", kwargs={"agent_public_id": agent.public_id}
        ),
        "segment_change_url": reverse(
            "contacts:segment_change",
            kwargs={"agent_public_id": agent.public_id, "segment_id": active.pk},
        )
        if active
        else "",
        "segment_reset_url": f"{base}?segment={active.pk}" if active else "",
    }


def _pairs(params: QueryDict, *, skip: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(k, v) for k, values in params.lists() if k not in skip for v in values]


def render_table(
    request: HttpRequest,
    access: AgentAccess,
    raw: QueryDict,
    *,
    pushed: str | None = None,
    chooser_open: bool = False,
    builder_error: str = "",
    status: int = 200,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    context = table_context(request, access, raw)
    context["chooser_open"] = chooser_open
    context["builder_error"] = builder_error
    extra = dict(extra or {})
    context["errors"] = {**context["errors"], **extra.pop("errors", {})}
    context.update(extra)
    response = render_page_or_fragment(
        request, "contacts/list.html", "contact-table", context, status=status
    )
    if wants_fragment(request) and pushed is not None:
        response = push_url(response, pushed)
    return response


@require_GET
@login_required
@vary_on_headers("HX-Request")
def contact_list(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    access = get_agent_access(request, agent_public_id)
    if "segment" in request.GET:
        opened = _open_segment(request, access)
        if opened is not None:
            return opened
    # The filter form's attribute builder (fkey/fop/fvalue) becomes attr.<key>[__op]=value,
    # so the address bar always shows the canonical state.
    definitions = {d.key: d for d in attribute_definitions(agent=access.agent)}
    canonical, problem = tbl.with_attribute_filter(
        request.GET, definitions, region=access.agent.default_phone_region or "US"
    )
    if problem:
        # The condition is refused where it was written; the table stays as it was.
        state = tbl.state_params(request.GET)
        return render_table(
            request,
            access,
            state,
            builder_error=problem,
            status=422,
            pushed=list_url(access.agent) + tbl.querystring(state),
        )
    if canonical is not None:
        target = list_url(access.agent) + (f"?{canonical}" if canonical else "")
        if not request.htmx:
            return redirect(target)
        return render_table(request, access, QueryDict(canonical), pushed=target)
    # The address bar gets the state without the form's empty fields (?identity=&seen=…).
    pushed = list_url(access.agent) + tbl.querystring(tbl.state_params(request.GET))
    return render_table(request, access, request.GET, pushed=pushed)


def _open_segment(request: HttpRequest, access: AgentAccess) -> HttpResponse | None:
    """`?segment=<id>` alone opens the segment: the address becomes its saved state (with
    the id, so the table knows which segment it shows). With more state in the address the
    segment stays marked and the address rules. None: nothing to do here."""
    base = list_url(access.agent)
    try:
        segment = segment_for_user(
            agent=access.agent, user=request.user, segment_id=request.GET.get("segment")
        )
    except Segment.DoesNotExist:
        state = tbl.state_params(request.GET)
        state.pop("segment", None)
        missing = {"segment": ["No such segment here, or it is private to someone else."]}
        return render_table(
            request,
            access,
            state,
            status=404,
            pushed=base + tbl.querystring(state),
            extra={"errors": missing},
        )
    if any(key not in UNSAVED_KEYS for key in tbl.state_params(request.GET)):
        return None
    target = QueryDict(mutable=True)
    target["segment"] = str(segment.pk)
    for key, values in QueryDict(segment.query).lists():
        target.setlist(key, values)
    if request.GET.get("per_page"):
        target["per_page"] = request.GET["per_page"]
    url = base + tbl.querystring(target)
    if not request.htmx:
        return redirect(url)
    return render_table(request, access, target, pushed=url)


def _return_state(request: HttpRequest) -> QueryDict:
    """The table state a form was posted from (its hidden `query` field)."""
    return tbl.state_params(QueryDict(request.POST.get("query", "")[:4000]))


def _back_to_table(request: HttpRequest, access: AgentAccess, state: QueryDict, **kw: Any):
    target = list_url(access.agent) + tbl.querystring(state)
    if request.htmx:
        return render_table(request, access, state, pushed=target, **kw)
    return redirect(target)


@require_POST
@login_required
def table_settings(request: HttpRequest, agent_public_id: str) -> HttpResponse:
    """Save the column chooser or rows per page for this user and agent, then show the table."""
    access = get_agent_access(request, agent_public_id)
    state = _return_state(request)
    columns = page_size = None
    if request.POST.get("chooser"):
        definitions = attribute_definitions(agent=access.agent)
        available = tbl.available_columns(definitions)
        columns = tbl.clean_column_keys(request.POST.getlist("cols"), available)
        state["cols"] = ",".join(columns) or "none"
    if "per_page" in request.POST:
        page_size = tbl.parse_page_size(request.POST["per_page"])
        if page_size is None:
            return HttpResponseBadRequest("Choose 25, 50, 100 or 250 rows per page.")
        state["per_page"] = str(page_size)
    table_preference_save(
        user=request.user, agent=access.agent, columns=columns, page_size=page_size
    )
    return _back_to_table(request, access, state, chooser_open=columns is not None)
