"""Every read of contacts that a screen or endpoint needs, with related rows loaded."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, connections
from django.db.models import Count, Prefetch, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from attributes.models import AttributeDefinition
from contacts import sql as contacts_sql
from contacts.models import (
    AuditEvent,
    Contact,
    ContactTag,
    MergedContact,
    Note,
    StripeAccount,
    Tag,
)
from contacts.query.expressions import exact_matches
from contacts.query.filterset import ContactFilterSet
from contacts.query.keyset import keyset_page
from contacts.serialization import contact_to_dict
from contacts.signals import collected, contact_data_requested
from core.keyset import InvalidCursor, cursor_moment, decode_cursor, encode_cursor
from core.planning import plans_without
from core.prepared import prepared
from core.times import iso
from workspaces.models import Agent

# Below this many rows an exact count is cheap; above it the table shows an estimate.
EXACT_COUNT_LIMIT = 10_000
# A search or tag the planner expects to match at least this many contacts is not counted
# at all on PostgreSQL: its estimate is shown (see table_count).
ESTIMATE_TRUSTED = 5 * EXACT_COUNT_LIMIT


def parse_contact_id(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def contact_queryset(*, agent: Agent, deleted: bool | None = False) -> QuerySet[Contact]:
    """The agent's contacts with tags and Stripe accounts prefetched.

    deleted=False: live only; True: soft-deleted only; None: both.
    """
    qs = Contact.objects.filter(agent=agent)
    if deleted is True:
        qs = qs.filter(deleted_at__isnull=False)
    elif deleted is False:
        qs = qs.filter(deleted_at__isnull=True)
    return qs.prefetch_related(
        Prefetch("tags", queryset=Tag.objects.order_by(Lower("name"))),
        Prefetch("stripe_accounts", queryset=StripeAccount.objects.order_by("created_at", "id")),
    )


def contact_get(*, agent: Agent, contact_id: Any, include_deleted: bool = True) -> Contact:
    """One contact of the agent; Contact.DoesNotExist for a malformed, foreign or unknown id."""
    pk = parse_contact_id(contact_id)
    if pk is None:
        raise Contact.DoesNotExist
    return contact_queryset(agent=agent, deleted=None if include_deleted else False).get(pk=pk)


def contact_merged_into(*, agent: Agent, contact_id: Any) -> Contact | None:
    """The live contact a merged-away contact of this agent now lives on in, if any."""
    pk = parse_contact_id(contact_id)
    if pk is None:
        return None
    merged = MergedContact.objects.filter(pk=pk, into__agent=agent).select_related("into").first()
    return merged.into if merged else None


def contacts_with_email(
    *, agent: Agent, email: str, exclude: Contact | None = None
) -> QuerySet[Contact]:
    """Live contacts whose email matches case-insensitively (uses the lower(email) index)."""
    qs = (
        Contact.objects.alias(email_ci=Lower("email"))
        .filter(agent=agent, email_ci=email.lower(), deleted_at__isnull=True)
        .exclude(email="")
    )
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return qs


def self_reported_twin_ids(*, agent: Agent, email: str, exclude: Contact, limit: int) -> list:
    """Ids of live self-reported contacts without an external id whose email matches
    `email` case-insensitively, oldest first: those a verified identify folds in.

    Every verified identify asks, and almost always finds none, so it is one indexed SQL
    statement (the lower(email) sort index) rather than an ORM query costing more to build
    than to run."""
    if not email:
        return []
    pk = Contact._meta.pk
    with connection.cursor() as cursor:
        cursor.execute(
            prepared(contacts_sql.SELF_REPORTED_TWINS),
            [agent.pk, email.lower(), pk.get_db_prep_value(exclude.pk, connection), limit],
        )
        return [pk.to_python(row[0]) for row in cursor.fetchall()]


def contact_possible_duplicates(*, contact: Contact, limit: int = 10) -> list[Contact]:
    """Other live contacts of the agent with the same email (any case) or phone."""
    match = Q()
    if contact.email:
        match |= Q(email_ci=contact.email.lower())
    if contact.phone:
        match |= Q(phone=contact.phone)
    if not match:
        return []
    return list(
        Contact.objects.alias(email_ci=Lower("email"))
        .filter(match, agent_id=contact.agent_id, deleted_at__isnull=True)
        .exclude(pk=contact.pk)
        .order_by("-updated_at", "id")[:limit]
    )


def merge_candidates(*, agent: Agent, contact: Contact, q: str, limit: int = 10) -> list[Contact]:
    """Live contacts of the agent, other than `contact`, found by the table's search (name,
    email, external id, phone, tag); a pasted email or external id's exact match first."""
    filters = ContactFilterSet({"q": q}, agent=agent, definitions={})
    if not filters.search_text:
        return []
    qs = filters.qs.filter(deleted_at__isnull=True).exclude(pk=contact.pk)
    pinned = exact_matches(qs, filters.search_text, agent=agent, limit=limit)
    if len(pinned) >= limit:
        return pinned[:limit]
    rest = qs.exclude(pk__in=[c.pk for c in pinned]) if pinned else qs
    return pinned + keyset_page(rest, filters.sort(), cursor=None, size=limit - len(pinned)).items


def contact_audit_events(*, contact: Contact, limit: int = 200) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(contact_id=contact.pk).order_by("-created_at", "-id")[:limit]
    )


def tags_with_counts(*, agent: Agent) -> QuerySet[Tag]:
    """The agent's tags with how many live contacts carry each, alphabetically."""
    return (
        Tag.objects.filter(agent=agent)
        .annotate(
            contact_count=Count(
                "contact_tags", filter=Q(contact_tags__contact__deleted_at__isnull=True)
            )
        )
        .order_by(Lower("name"), "id")
    )


def tag_suggestions(*, agent: Agent, prefix: str, limit: int = 10) -> list[str]:
    """Tag names starting with (then containing) `prefix`, for suggest-as-you-type."""
    prefix = prefix.strip()
    qs = Tag.objects.filter(agent=agent)
    if not prefix:
        return list(qs.order_by(Lower("name")).values_list("name", flat=True)[:limit])
    starts = list(
        qs.filter(name__istartswith=prefix)
        .order_by(Lower("name"))
        .values_list("name", flat=True)[:limit]
    )
    if len(starts) < limit:
        contains = (
            qs.filter(name__icontains=prefix)
            .exclude(name__istartswith=prefix)
            .order_by(Lower("name"))
            .values_list("name", flat=True)[: limit - len(starts)]
        )
        starts += list(contains)
    return starts


def count_estimate(
    qs: QuerySet, *, agent: Agent | None = None, narrowed: bool = True, planned: int | None = None
) -> tuple[int, bool]:
    """(count, exact). Exact up to EXACT_COUNT_LIMIT; above, PostgreSQL's planner estimate.

    Counting a million rows exactly costs more than the page itself, and "about 1.2M" is
    what a person needs to see. SQLite has no estimate to read: there a whole agent
    (`narrowed` False: one index count) is counted exactly, and a filter's matches beyond
    the limit are "more than 10,000" (EXACT_COUNT_LIMIT + 1, not exact) instead of being
    walked one by one. `planned`: the planner's estimate, when the caller has it already.
    """
    capped = qs.order_by()[: EXACT_COUNT_LIMIT + 1].count()
    if capped <= EXACT_COUNT_LIMIT:
        return capped, True
    if connection.vendor == "postgresql":
        return max(planned_rows(qs) if planned is None else planned, capped), False
    if narrowed:
        return capped, False
    return qs.order_by().count(), True


def planned_rows(qs: QuerySet) -> int:
    """How many rows PostgreSQL's planner expects `qs` to hold (EXPLAIN: planning only)."""
    sql, params = qs.order_by().query.sql_with_params()
    with connections[qs.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def table_preference_get(*, user, agent: Agent):
    """The user's remembered table layout for this agent, or None."""
    from contacts.models import TablePreference

    return TablePreference.objects.filter(user=user, agent=agent).first()


def tag_names(*, agent: Agent, limit: int = 500) -> list[str]:
    """The agent's tag names alphabetically (filter menus); no counts, so cheap at any size."""
    return list(
        Tag.objects.filter(agent=agent)
        .order_by(Lower("name"), "id")
        .values_list("name", flat=True)[:limit]
    )


def search_planned(*, qs: QuerySet[Contact], filters) -> int | None:
    """The planner's estimate of a substring search's matches on PostgreSQL, which
    table_count judges a search's count by (None where it does not): asked before the page,
    it tells whether the page's own scan may count the matches (`keyset_page(count=True)`,
    then `table_count(matched=…)`) instead of a second trigram scan for the count."""
    if not filters.search_text or connection.vendor != "postgresql":
        return None
    return planned_rows(qs)


def table_count(
    *,
    qs: QuerySet[Contact],
    filters,
    agent: Agent,
    planned: int | None = None,
    matched: int | None = None,
) -> tuple[int, bool]:
    """(count, exact) for the table's summary line.

    `planned` and `matched`, for a substring search on PostgreSQL: the estimate already
    made by search_planned, and the matches the page's query counted (keyset_page's
    `count`, asked when the estimate is within EXACT_COUNT_LIMIT), which is then the count.

    A tag filter alone is counted from the tag's links (an index-only count of
    contacttag_tag_contact, a few ms for 60,000 links) when that is above the exact-count
    limit: capping a semi-join at 10,001 rows first hashes every link of the tag (~200 ms at a
    million contacts) and then still shows only "10K". Links of deleted contacts are
    included, so the figure is shown as an estimate. On PostgreSQL a tag the planner's
    statistics say is on ESTIMATE_TRUSTED links or more (its own frequency among the
    links: exact to a few percent for a common tag) is not counted: 1.2M links of one tag
    at ten million contacts took 33 ms.
    """
    if filters.only_tags and not filters.deleted_view:
        links = min(_tag_links(agent, name) for name in filters.tags)
        if links > EXACT_COUNT_LIMIT:
            return links, False
        if connection.vendor == "sqlite" and len(filters.tags) == 1:
            # From the tag's links, less those of deleted contacts (see tagged_live_count).
            return tagged_live_count(agent=agent, name=filters.tags[0], links=links), True
    if filters.only_attribute_conditions and connection.vendor == "postgresql":
        # The planner likes a bitmap scan of the attribute's index for the capped count,
        # which reads every match first (488,000 of "plan = Enterprise" at ten million:
        # 180 ms); walking the index stops at the cap (30 ms). Bitmap scans are only left
        # out for this count (SET LOCAL), and only when attribute conditions are all there
        # is: a trigram search (GIN indexes only scan as bitmaps) or an OR of conditions
        # needs them.
        with plans_without("bitmapscan", using=qs.db):
            return count_estimate(qs, agent=agent)
    if filters.search_text and connection.vendor == "postgresql":
        # A substring search is answered by the trigram index, which only scans as a bitmap:
        # even capped at 10,001 the count reads every match first (124,000 for "mart" at ten
        # million contacts: 130 ms, ten times the page). When the planner expects far more
        # than the cap, its estimate is the summary line ("about 140K"); search_text keeps a
        # histogram fine enough for that (migration 0011: 0.1 % of the table per bucket).
        estimate = planned_rows(qs) if planned is None else planned
        if estimate >= ESTIMATE_TRUSTED:
            return estimate, False
        if matched is not None:
            return matched, True
        return count_estimate(qs, agent=agent, narrowed=True, planned=estimate)
    return count_estimate(qs, agent=agent, narrowed=filters.is_filtered)


def _tag_links(agent: Agent, name: str) -> int:
    """How many contacts carry the tag `name` (any case), deleted ones included: counted,
    or on PostgreSQL estimated when the estimate is ESTIMATE_TRUSTED or more."""
    tag_ids = list(Tag.objects.filter(agent=agent, name__iexact=name).values_list("pk", flat=True))
    if not tag_ids:
        return 0
    links = ContactTag.objects.filter(tag_id__in=tag_ids)
    if connection.vendor == "postgresql":
        # With the ids written in, the planner reads the tag's own frequency.
        estimate = planned_rows(links)
        if estimate >= ESTIMATE_TRUSTED:
            return estimate
    return links.count()


def tagged_live_count(*, agent: Agent, name: str, links: int) -> int:
    """How many live contacts of the agent carry the tag `name` (SQLite), from the count of
    its `links`: those of soft-deleted contacts are taken off (the agent's deleted contacts
    are few and each probes its links). Capping the semi-join walks the agent's contacts,
    probing each for the tag (90 ms at 100,000); this takes 1-2 ms."""
    with connection.cursor() as cursor:
        cursor.execute(contacts_sql.TAGGED_DELETED_COUNT, {"agent": agent.pk, "name": name})
        return links - cursor.fetchone()[0]


def contact_export_data(*, contact: Contact) -> dict[str, Any]:
    """Everything held about one contact, for an access request (GDPR art. 15). The apps
    that keep more about contacts (conversations, visitor sessions) add their sections
    through `contact_data_requested`."""
    definitions = {d.key: d for d in AttributeDefinition.objects.filter(agent_id=contact.agent_id)}
    contact = (
        Contact.objects.prefetch_related("tags", "stripe_accounts")
        .select_related("agent")
        .get(pk=contact.pk)
    )
    return {
        "exported_at": iso(timezone.now()),
        "agent": contact.agent.name,
        "contact": contact_to_dict(contact),
        "attribute_labels": {
            key: definitions[key].label for key in contact.attributes if key in definitions
        },
        "identity_source": contact.identity_source,
        "notes": [
            {
                "author": note.author_name,
                "body": note.body,
                "created_at": iso(note.created_at),
                "updated_at": iso(note.updated_at),
            }
            for note in Note.objects.filter(contact_id=contact.pk).order_by("created_at", "id")
        ],
        **collected(contact_data_requested.send(sender=Contact, contact=contact)),
        "history": [
            {
                "action": e.action,
                "channel": e.channel,
                "actor": e.actor_label,
                "changes": e.changes,
                "at": iso(e.created_at),
            }
            for e in AuditEvent.objects.filter(contact_id=contact.pk)
        ],
    }


# --- Notes ----------------------------------------------------------------------------------

NOTES_PAGE_SIZE = 10


@dataclass
class NotesPage:
    """A page of a contact's notes, newest first, and where the next (older) one starts."""

    items: list[Note] = field(default_factory=list)
    total: int = 0
    older_cursor: str | None = None
    first: bool = True


def contact_notes_page(
    *, contact: Contact, cursor: str | None = None, size: int = NOTES_PAGE_SIZE
) -> NotesPage:
    """The notes of `contact` newest first, from `cursor` on (two queries on the
    note_contact_time index: the page and the count). ValueError for a cursor that is not
    one of ours."""
    notes = Note.objects.filter(contact_id=contact.pk)
    page = NotesPage(total=notes.count(), first=not cursor)
    if cursor:
        try:
            at = decode_cursor(cursor, keys=("t", "id"))
            moment, pk = cursor_moment(at["t"]), at["id"]
            if not isinstance(pk, int) or isinstance(pk, bool):
                raise InvalidCursor
        except InvalidCursor:
            raise ValueError("That page of notes does not exist; showing the newest.") from None
        notes = notes.filter(Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=pk))
    rows = list(notes.order_by("-created_at", "-id")[: size + 1])
    page.items = rows[:size]
    if len(rows) > size:
        last = page.items[-1]
        page.older_cursor = encode_cursor({"t": last.created_at, "id": last.pk})
    return page


def contact_note_count(*, contact: Contact) -> int:
    return Note.objects.filter(contact_id=contact.pk).count()
