"""What keeps the table fast at a million contacts: estimates, attribute sort indexes, the
benchmark. (Timings themselves are measured by `make bench`, never here.)"""

from __future__ import annotations

import pytest
from django.db import connection
from django.http import QueryDict
from django.utils import timezone

from attributes.models import AttributeDefinition
from attributes.services import attribute_delete
from contacts import table as tbl
from contacts.models import Contact
from contacts.query.filterset import ContactFilterSet
from contacts.query.keyset import keyset_page, order_contacts
from contacts.sort_indexes import (
    sort_index_build,
    sort_index_exists,
    sort_index_name,
)
from tests.factories import AttributeFactory, ContactFactory
from tests.helpers import list_url

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's count")


def _plan(sql: str, params) -> str:
    """The plan of a query as text, with sorting switched off on PostgreSQL (to prove an
    index can answer the order; SQLite's plan says USE TEMP B-TREE when it cannot)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute("SET enable_sort = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_sort")
        return plan


@pytest.mark.parametrize(
    ("count", "exact", "text"),
    [
        (0, True, "0"),
        (9_999, True, "9,999"),
        (12_345, False, "about 12K"),
        (1_234_567, False, "about 1.2M"),
        (999_499, False, "about 999K"),
        (999_612, False, "about 1.0M"),
        (10_001, False, "more than 10,000"),
    ],
)
def test_counts_read_as_exact_or_about(count, exact, text):
    assert tbl.format_estimate(count, exact) == text


@pytest.mark.django_db
def test_a_large_agent_shows_an_estimate_not_an_exact_count(staff_client, agent, monkeypatch):
    ContactFactory(agent=agent)
    monkeypatch.setattr("contacts.views.table.table_count", lambda **kw: (1_234_567, False))
    html = staff_client.get(list_url(agent)).content.decode()
    assert "1–1 of about 1.2M contacts" in html


def test_headers_sort_ascending_first_except_dates_and_numbers():
    state = tbl.build_state(
        QueryDict("ordering=-email"),
        definitions=[],
        remembered_columns=["email", "created_at", "tags"],
        remembered_page_size=None,
    )
    headers = {h.column.key: h for h in tbl.headers(state, "/c/")}
    assert headers["name"].url == "/c/?ordering=name"
    assert headers["email"].url == "/c/?ordering=email"
    assert headers["email"].aria_sort == "descending"
    assert headers["created_at"].url == "/c/?ordering=-created_at"
    assert headers["tags"].url is None


@pytest.mark.django_db(transaction=True)
def test_an_attribute_sort_index_serves_the_tables_attribute_sort_and_filter(agent):
    mrr = AttributeFactory(agent=agent, key="mrr", type="number")
    for value in (5, 50, None, 500):
        ContactFactory(agent=agent, attributes={} if value is None else {"mrr": value})
    assert not sort_index_exists(mrr)
    assert sort_index_build(mrr) is True
    assert sort_index_exists(mrr)
    assert sort_index_build(mrr) is False

    definitions = {"mrr": mrr}
    filters = ContactFilterSet({"ordering": "-attr.mrr"}, agent=agent, definitions=definitions)
    qs = filters.validated().qs
    spec = filters.sort()
    page = keyset_page(qs, spec, cursor=None, size=2)
    assert [c.attributes.get("mrr") for c in page.items] == [500, 50]
    index = sort_index_name(agent_id=agent.pk, key="mrr")
    # The planner can answer the page from the index, and the next page too.
    assert index in _plan(*order_contacts(qs, spec).query.sql_with_params())
    following = keyset_page(qs, spec, cursor=page.next_cursor, size=2)
    assert [c.attributes.get("mrr") for c in following.items] == [5, None]
    # A range filter on the attribute reads the same index; the contact without a value
    # is not "below 100".
    ranged = ContactFilterSet({"attr.mrr__lt": "100"}, agent=agent, definitions=definitions)
    assert sorted(c.attributes["mrr"] for c in ranged.validated().qs) == [5, 50]
    if connection.vendor == "sqlite":  # PostgreSQL's planner reads a 4-row table instead
        assert index in _plan(*ranged.validated().qs.order_by().query.sql_with_params())

    attribute_delete(definition=AttributeDefinition.objects.get(pk=mrr.pk))
    assert not sort_index_exists(mrr)


@pytest.mark.django_db
def test_sorting_a_large_agent_by_an_attribute_requests_its_index(staff_client, agent, monkeypatch):
    from django_tasks_db.models import DBTaskResult

    AttributeFactory(agent=agent, key="mrr", type="number")
    monkeypatch.setattr("contacts.views.table.table_count", lambda **kw: (2_000_000, False))
    staff_client.get(list_url(agent), {"ordering": "attr.mrr"})
    staff_client.get(list_url(agent), {"ordering": "-attr.mrr"})
    tasks = DBTaskResult.objects.filter(task_path__endswith="build_attribute_sort_index")
    assert tasks.count() == 1


@pytest.mark.django_db
def test_filtering_a_large_agent_by_an_attribute_requests_its_index(
    staff_client, agent, monkeypatch
):
    from django_tasks_db.models import DBTaskResult

    AttributeFactory(agent=agent, key="plan", type="select", options=["Free", "Pro"])
    tasks = DBTaskResult.objects.filter(task_path__endswith="build_attribute_sort_index")
    ContactFactory.create_batch(3, agent=agent, attributes={"plan": "Pro"})
    staff_client.get(list_url(agent), {"attr.plan": "Pro"})
    assert tasks.count() == 0  # a small agent scans faster than it would keep an index

    from django.core.cache import caches

    caches["local"].clear()
    monkeypatch.setattr("contacts.tasks.EXACT_COUNT_LIMIT", 2)
    response = staff_client.get(list_url(agent), {"attr.plan": "Pro"})
    staff_client.get(list_url(agent), {"attr.plan": "Free"})
    assert response.status_code == 200
    assert tasks.count() == 1


@pytest.mark.django_db
def test_a_large_tag_filter_is_counted_from_its_links(agent, monkeypatch):
    from contacts.selectors import table_count
    from tests.factories import TagFactory

    monkeypatch.setattr("contacts.selectors.EXACT_COUNT_LIMIT", 2)
    vip = TagFactory(agent=agent, name="vip")
    tagged = ContactFactory.create_batch(5, agent=agent, name="Same")
    for contact in tagged:
        contact.tags.add(vip)
    ContactFactory(agent=agent)

    def count(params):
        filters = ContactFilterSet(params, agent=agent, definitions={}).validated()
        return table_count(qs=filters.qs, filters=filters, agent=agent)

    assert count({"tag": "VIP"}) == (5, False)
    assert count({"tag": "nope"}) == (0, True)
    monkeypatch.setattr("contacts.selectors.EXACT_COUNT_LIMIT", 10)
    # Under the limit the count is exact, live contacts only (SQLite reads it from the
    # tag's links; PostgreSQL caps the semi-join).
    Contact.objects.filter(pk=tagged[0].pk).update(deleted_at=timezone.now())
    assert count({"tag": "VIP"}) == (4, True)
    # With another filter the links say nothing: the usual (here exact) count applies.
    assert count({"tag": "vip", "identity": "anonymous"}) == (0, True)


@pytest.mark.django_db
@sqlite_only
def test_sqlite_says_more_than_the_limit_instead_of_counting_every_match(
    staff_client, agent, monkeypatch
):
    from contacts.selectors import table_count

    monkeypatch.setattr("contacts.selectors.EXACT_COUNT_LIMIT", 3)
    monkeypatch.setattr("contacts.table.EXACT_COUNT_LIMIT", 3)
    ContactFactory.create_batch(5, agent=agent, name="Martha")
    ContactFactory(agent=agent, name="Zed")

    def count(params):
        filters = ContactFilterSet(params, agent=agent, definitions={}).validated()
        return table_count(qs=filters.qs, filters=filters, agent=agent)

    assert count({"q": "martha"}) == (4, False)  # the limit + 1: "more than 3"
    assert count({}) == (6, True)  # the whole agent: one index count, exact
    html = staff_client.get(list_url(agent), {"q": "martha"}).content.decode()
    assert "more than 3 matching" in html


@pytest.mark.django_db
def test_attribute_conditions_alone_are_counted_along_the_index_without_bitmap_scans(agent):
    """Attribute conditions alone (all of them to hold): on PostgreSQL the capped count
    runs with bitmap scans off for that one statement (a bitmap reads every match before the
    cap applies); with a search, or any of several conditions, it does not."""
    from django.test.utils import CaptureQueriesContext

    from contacts.selectors import table_count

    plan = AttributeFactory(agent=agent, key="plan", type="text")
    definitions = {"plan": plan}
    ContactFactory.create_batch(2, agent=agent, attributes={"plan": "Pro"})
    ContactFactory(agent=agent, name="Martha", attributes={"plan": "Free"})

    def count(params):
        filters = ContactFilterSet(params, agent=agent, definitions=definitions).validated()
        with CaptureQueriesContext(connection) as queries:
            result = table_count(qs=filters.qs, filters=filters, agent=agent)
        bitmap_off = any("enable_bitmapscan" in q["sql"] for q in queries.captured_queries)
        return result, bitmap_off

    postgres = connection.vendor == "postgresql"
    assert count({"attr.plan": "Pro"}) == ((2, True), postgres)
    assert count({"attr.plan": "Pro", "q": "mart"}) == ((0, True), False)
    assert count({"attr.plan": ["Pro", "Free"], "match": "any"})[1] is False
    assert count({"identity": "verified"})[1] is False
    # The setting ended with its count.
    if postgres:
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_bitmapscan")
            assert cursor.fetchone()[0] == "on"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ordering", "index"),
    [
        ("-last_seen_at", "contact_sort_last_seen_at"),
        ("-first_seen_at", "contact_sort_first_seen_at"),
        ("-external_id", "contact_sort_external_id"),
        ("-name", "contact_sort_name"),
    ],
)
def test_sorts_with_a_stand_in_for_no_value_read_their_index(agent, ordering, index):
    """The stand-in (never seen as the epoch, no external id as "") is written into the
    SQL as the index holds it: SQLite matches an expression index only to the identical
    expression, and a bound parameter is not. (Descending: an ascending page reads the
    same index in two ranges, see keyset._blanks_last_page.)"""
    ContactFactory.create_batch(3, agent=agent)
    filters = ContactFilterSet({"ordering": ordering}, agent=agent, definitions={})
    qs, spec = filters.validated().qs, filters.sort()
    plan = _plan(*order_contacts(qs, spec).query.sql_with_params())
    assert index in plan
    assert "TEMP B-TREE" not in plan


def test_relative_times_read_as_djangos_timesince_counts_them():
    """The table's "… ago" (written without the translation machinery, a page shows a
    hundred) counts calendar months and years as django.utils.timesince does."""
    import random
    from datetime import UTC, datetime, timedelta

    from django.utils.timesince import timesince

    rnd = random.Random(7)
    now = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    fixed = [
        (now - timedelta(seconds=59), "just now"),
        (now - timedelta(minutes=1), "1 minute ago"),
        (now - timedelta(hours=5, minutes=59), "5 hours ago"),
        (now - timedelta(days=13), "1 week ago"),
        (datetime(2026, 2, 28, 12, 0, tzinfo=UTC), "1 month ago"),
        (datetime(2026, 2, 28, 12, 1, tzinfo=UTC), "1 month ago"),
        (datetime(2026, 3, 1, 12, 1, tzinfo=UTC), "4 weeks ago"),
        (datetime(2024, 3, 31, 12, 0, tzinfo=UTC), "2 years ago"),
    ]
    for value, text in fixed:
        assert tbl.ago_text(value, now) == text
    for _ in range(5_000):
        value = now - timedelta(seconds=rnd.randint(60, 400_000_000))
        expected = timesince(value, now, depth=1).replace("\xa0", " ") + " ago"
        assert tbl.ago_text(value, now) == expected


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("indexed", [False, True])
def test_attribute_and_tag_filters_find_what_the_data_says_with_or_without_indexes(agent, indexed):
    """The same contacts on both databases, whether the attribute indexes exist or not
    (on SQLite they change the SQL: the sort key, with its stand-in for no value, is what
    a filter compares)."""
    from tests.factories import TagFactory

    schema = {
        "plan": AttributeFactory(agent=agent, key="plan", type="select", options=["Free", "Pro"]),
        "mrr": AttributeFactory(agent=agent, key="mrr", type="number"),
        "beta": AttributeFactory(agent=agent, key="beta", type="boolean"),
        "signup": AttributeFactory(agent=agent, key="signup", type="date"),
    }
    vip = TagFactory(agent=agent, name="vip")
    people = {
        "A": {"plan": "Pro", "mrr": 0, "beta": False, "signup": "2024-01-31"},
        "B": {"plan": "Free", "mrr": -5.5, "beta": True},
        "C": {"mrr": 1e6, "signup": "2023-12-01"},
        "D": {},
        "E": {"plan": "Pro", "mrr": 42},
    }
    for name, attributes in people.items():
        contact = ContactFactory(agent=agent, name=name, attributes=attributes)
        if name in ("A", "C", "D"):
            contact.tags.add(vip)
    if indexed:
        for definition in schema.values():
            sort_index_build(definition)

    def names(query: str) -> list[str]:
        filters = ContactFilterSet(QueryDict(query), agent=agent, definitions=schema)
        return sorted(filters.validated().qs.values_list("name", flat=True))

    assert names("attr.plan=Pro") == ["A", "E"]
    assert names("attr.plan__ne=Pro") == ["B", "C", "D"]
    assert names("attr.mrr__lt=1") == ["A", "B"]
    assert names("attr.mrr__gte=0") == ["A", "C", "E"]
    assert names("attr.mrr__between=-10,42") == ["A", "B", "E"]
    assert names("attr.mrr__ne=0") == ["B", "C", "D", "E"]
    assert names("attr.beta=no") == ["A"]
    assert names("attr.beta=yes") == ["B"]
    assert names("attr.signup__lt=2024-01-01") == ["C"]
    assert names("attr.signup__gte=2024-01-01") == ["A"]
    assert names("attr.mrr__exists=false") == ["D"]
    assert names("tag=vip") == ["A", "C", "D"]
    assert names("tag=vip&attr.plan=Pro") == ["A"]


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimate")
def test_a_search_the_planner_expects_to_match_widely_is_shown_as_its_estimate(agent, monkeypatch):
    """A trigram search's capped count reads every match before the cap applies: when the
    planner expects far more matches than the cap, the summary line is its estimate and no
    count runs; otherwise the search is counted as before."""
    from django.test.utils import CaptureQueriesContext

    from contacts.selectors import planned_rows, table_count

    ContactFactory.create_batch(3, agent=agent, name="Martha")
    ContactFactory(agent=agent, name="Zed")

    def count(params):
        filters = ContactFilterSet(params, agent=agent, definitions={}).validated()
        with CaptureQueriesContext(connection) as queries:
            result = table_count(qs=filters.qs, filters=filters, agent=agent)
        counted = any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
        return result, counted, filters.qs

    assert count({"q": "mart"})[:2] == ((3, True), True)
    # Above the exact limit but under the trusted estimate: counted up to the cap, and the
    # planner asked once (the estimate beside the capped count is the one already made).
    monkeypatch.setattr("contacts.selectors.EXACT_COUNT_LIMIT", 1)
    filters = ContactFilterSet({"q": "mart"}, agent=agent, definitions={}).validated()
    with CaptureQueriesContext(connection) as queries:
        shown, exact = table_count(qs=filters.qs, filters=filters, agent=agent)
    assert exact is False
    assert shown >= 2
    assert sum(q["sql"].startswith("EXPLAIN") for q in queries.captured_queries) == 1
    monkeypatch.setattr("contacts.selectors.EXACT_COUNT_LIMIT", 10_000)
    monkeypatch.setattr("contacts.selectors.ESTIMATE_TRUSTED", 1)
    (shown, exact), counted, qs = count({"q": "mart"})
    assert (exact, counted) == (False, False)
    assert shown == planned_rows(qs) >= 1
    # Without a search nothing changes: the whole agent is counted up to the cap.
    assert count({})[:2] == ((4, True), True)


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimate")
def test_a_narrow_search_is_counted_by_its_first_pages_own_scan(staff_client, agent, monkeypatch):
    """A search the planner expects to match no more than EXACT_COUNT_LIMIT contacts is
    counted by the first page's query (COUNT(*) OVER ()), not by a second trigram scan; a
    pasted address pinned above the page is in the count; a later page is counted as before;
    a search expected to match more is capped or estimated as before and reads no window."""
    from django.test.utils import CaptureQueriesContext

    ContactFactory.create_batch(3, agent=agent, name="Martha Quinn")
    ContactFactory(agent=agent, name="Zed", email="martha@example.com")
    ContactFactory(agent=agent, name="Old", email="old.martha@example.com")
    ContactFactory(agent=agent, name="Nobody")

    def table(params):
        with CaptureQueriesContext(connection) as queries:
            html = staff_client.get(list_url(agent), params).content.decode()
        sqls = [q["sql"] for q in queries.captured_queries]
        windows = [sql for sql in sqls if "COUNT(*) OVER ()" in sql]
        counts = [sql for sql in sqls if "COUNT(" in sql and "OVER ()" not in sql]
        return html, windows, counts

    html, windows, counts = table({"q": "martha"})
    assert 'class="table-count" data-total="5"' in html
    assert "1–5 of 5 contacts" in html
    assert (len(windows), counts) == (1, [])
    # Index scans were off for the page's query alone (inside the test's transaction too).
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_indexscan")
        assert cursor.fetchone()[0] == "on"
    # The pasted address leads the page (its own query) and is counted with the page's rows.
    html, windows, counts = table({"q": "martha@example.com"})
    assert 'data-total="2"' in html
    assert html.index("Zed") < html.index("Old")
    assert (len(windows), counts) == (1, [])

    filters = ContactFilterSet({"q": "martha"}, agent=agent, definitions={}).validated()
    first = keyset_page(filters.qs, filters.sort(), cursor=None, size=2, count=True)
    assert (first.matches, len(first.items)) == (5, 2)
    later = keyset_page(filters.qs, filters.sort(), cursor=first.next_cursor, size=2, count=True)
    assert later.matches is None
    assert {c.pk for c in first.items}.isdisjoint(c.pk for c in later.items)
    nothing = ContactFilterSet({"q": "zzzz"}, agent=agent, definitions={}).validated()
    assert keyset_page(nothing.qs, nothing.sort(), cursor=None, size=2, count=True).matches == 0

    # Expected above the exact-count limit: the capped count as before.
    monkeypatch.setattr("contacts.views.table.EXACT_COUNT_LIMIT", 0)
    html, windows, counts = table({"q": "martha"})
    assert (windows, len(counts)) == ([], 1)
    assert "1–5 of 5 contacts" in html
    # Expected at ESTIMATE_TRUSTED or more: the estimate, nothing counted.
    monkeypatch.setattr("contacts.selectors.ESTIMATE_TRUSTED", 1)
    html, windows, counts = table({"q": "martha"})
    assert (windows, counts) == ([], [])
    assert "1–5 of about " in html


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statistics")
def test_search_text_keeps_a_fine_histogram_for_those_estimates():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstattarget FROM pg_attribute WHERE attrelid = 'contacts_contact'::regclass"
            " AND attname = 'search_text'"
        )
        assert cursor.fetchone()[0] == 1000


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimate")
def test_a_tag_the_statistics_say_is_common_is_shown_as_their_estimate(agent, monkeypatch):
    from django.test.utils import CaptureQueriesContext

    from contacts.models import ContactTag
    from contacts.selectors import planned_rows, table_count
    from tests.factories import TagFactory

    vip = TagFactory(agent=agent, name="vip")
    for contact in ContactFactory.create_batch(4, agent=agent):
        contact.tags.add(vip)

    def count():
        filters = ContactFilterSet({"tag": "VIP"}, agent=agent, definitions={}).validated()
        with CaptureQueriesContext(connection) as queries:
            result = table_count(qs=filters.qs, filters=filters, agent=agent)
        return result, any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)

    assert count() == ((4, True), True)
    monkeypatch.setattr("contacts.selectors.ESTIMATE_TRUSTED", 1)
    monkeypatch.setattr("contacts.selectors.EXACT_COUNT_LIMIT", 0)
    estimate = planned_rows(ContactTag.objects.filter(tag_id__in=[vip.pk]))
    assert count() == ((estimate, False), False)
