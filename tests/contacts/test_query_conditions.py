"""Conditions on contact fields and attributes, and match=all|any: what each operator keeps,
the refusals that name the parameter, and the indexes that answer them on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.http import QueryDict
from django.utils import timezone

from attributes.selectors import attribute_definition_map
from contacts.models import Contact
from contacts.query.filterset import ContactFilterSet
from contacts.query.keyset import keyset_page
from core.errors import ValidationFailed
from tests.factories import AttributeFactory, ContactFactory, TagFactory
from tests.helpers import error

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"


@pytest.fixture
def schema(agent):
    AttributeFactory(agent=agent, key="plan", label="Plan", type="select", options=["Free", "Pro"])
    AttributeFactory(agent=agent, key="mrr", label="MRR", type="number")
    AttributeFactory(agent=agent, key="signup", label="Signup", type="date")
    AttributeFactory(agent=agent, key="paid_at", label="Paid at", type="datetime")
    AttributeFactory(agent=agent, key="city", label="City", type="text")
    AttributeFactory(agent=agent, key="beta", label="Beta", type="boolean")
    return attribute_definition_map(agent=agent)


def _names(agent, schema, query: str) -> list[str]:
    filters = ContactFilterSet(QueryDict(query), agent=agent, definitions=schema).validated()
    return sorted(filters.qs.values_list("name", flat=True))


def _errors(agent, schema, query: str) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as excinfo:
        ContactFilterSet(QueryDict(query), agent=agent, definitions=schema).validated()
    return excinfo.value.fields


def test_text_fields_compare_ignoring_case_and_keep_blanks_for_negations(agent, schema):
    ContactFactory(agent=agent, name="Ada Lovelace", email="ada@acme.com", company="Acme")
    ContactFactory(agent=agent, name="Bob Byte", email="bob@globex.com", company="")
    ContactFactory(agent=agent, name="Cy", email="", company="ACME Labs", external_id="CRM-7")
    assert _names(agent, schema, "email=ADA@acme.com") == ["Ada Lovelace"]
    assert _names(agent, schema, "email__contains=@ACME") == ["Ada Lovelace"]
    assert _names(agent, schema, "email__not_contains=acme") == ["Bob Byte", "Cy"]
    assert _names(agent, schema, "email__exists=false") == ["Cy"]
    assert _names(agent, schema, "company__ne=acme") == ["Bob Byte", "Cy"]
    assert _names(agent, schema, "company__contains=acme") == ["Ada Lovelace", "Cy"]
    assert _names(agent, schema, "company__exists=true") == ["Ada Lovelace", "Cy"]
    assert _names(agent, schema, "name__contains=byt") == ["Bob Byte"]
    assert _names(agent, schema, "name__not_contains=a") == ["Bob Byte", "Cy"]
    # External ids are exact when compared whole, case-insensitive inside.
    assert _names(agent, schema, "external_id=CRM-7") == ["Cy"]
    assert _names(agent, schema, "external_id=crm-7") == []
    assert _names(agent, schema, "external_id__contains=crm") == ["Cy"]
    assert _names(agent, schema, "external_id__exists=false") == ["Ada Lovelace", "Bob Byte"]


def test_phones_compare_as_numbers_and_by_digits(agent, schema):
    agent.default_phone_region = "GB"
    agent.save()
    ContactFactory(agent=agent, name="London", phone="+442079460958")
    ContactFactory(agent=agent, name="Frisco", phone="+14155552671")
    ContactFactory(agent=agent, name="Nobody", phone="")
    # Typed as people write them; the agent's region fills in a missing country code.
    assert _names(agent, schema, "phone=020 7946 0958") == ["London"]
    assert _names(agent, schema, "phone=%2B1 (415) 555-2671") == ["Frisco"]
    assert _names(agent, schema, "phone__contains=(415) 555") == ["Frisco"]
    assert _names(agent, schema, "phone__exists=false") == ["Nobody"]
    assert _names(agent, schema, "phone__ne=%2B14155552671") == ["London", "Nobody"]
    assert "not a valid phone number" in _errors(agent, schema, "phone=12")["phone"][0]
    assert _errors(agent, schema, "phone__contains=abc") == {
        "phone__contains": ["Give some digits of the phone number."]
    }


def test_tag_conditions_have_hasnt_and_any(agent, schema):
    vip, churn = TagFactory(agent=agent, name="VIP"), TagFactory(agent=agent, name="churn")
    ContactFactory(agent=agent, name="Both").tags.add(vip, churn)
    ContactFactory(agent=agent, name="Vip").tags.add(vip)
    ContactFactory(agent=agent, name="None")
    assert _names(agent, schema, "tag__eq=vip") == ["Both", "Vip"]
    assert _names(agent, schema, "tag__ne=churn") == ["None", "Vip"]
    assert _names(agent, schema, "tag__exists=false") == ["None"]
    assert _names(agent, schema, "tag__exists=true") == ["Both", "Vip"]
    # A tag nobody has: nobody has it, everybody has not.
    assert _names(agent, schema, "tag__eq=ghost") == []
    assert _names(agent, schema, "tag__ne=ghost") == ["Both", "None", "Vip"]


def test_conversation_counts_compare_as_numbers(agent, schema):
    for name, count in (("Zero", 0), ("Two", 2), ("Ten", 10)):
        ContactFactory(agent=agent, name=name, conversation_count=count)
    assert _names(agent, schema, "conversation_count__gte=2") == ["Ten", "Two"]
    assert _names(agent, schema, "conversation_count__between=1,5") == ["Two"]
    assert _names(agent, schema, "conversation_count=0") == ["Zero"]
    assert _names(agent, schema, "conversation_count__ne=0") == ["Ten", "Two"]
    assert _errors(agent, schema, "conversation_count__gt=1.5") == {
        "conversation_count__gt": ["Conversations must be a whole number, such as 3."]
    }


def test_a_date_alone_means_the_whole_day(agent, schema):
    day = datetime(2024, 1, 31, tzinfo=UTC)
    ContactFactory(agent=agent, name="Morning", created_at=day + timedelta(hours=1))
    ContactFactory(agent=agent, name="Night", created_at=day + timedelta(hours=23, minutes=59))
    ContactFactory(agent=agent, name="Next", created_at=day + timedelta(days=1))
    ContactFactory(agent=agent, name="Before", created_at=day - timedelta(seconds=1))
    assert _names(agent, schema, "created_at=2024-01-31") == ["Morning", "Night"]
    assert _names(agent, schema, "created_at__gt=2024-01-31") == ["Next"]
    assert _names(agent, schema, "created_at__gte=2024-01-31") == ["Morning", "Next", "Night"]
    assert _names(agent, schema, "created_at__lt=2024-01-31") == ["Before"]
    assert _names(agent, schema, "created_at__lte=2024-01-31") == ["Before", "Morning", "Night"]
    assert _names(agent, schema, "created_at__between=2024-01-31,2024-01-31") == [
        "Morning",
        "Night",
    ]
    # A time is exact.
    assert _names(agent, schema, "created_at__gt=2024-01-31T12:00:00Z") == ["Next", "Night"]


def test_relative_dates_and_never_seen(agent, schema):
    now = timezone.now()
    ContactFactory(agent=agent, name="Today", last_seen_at=now - timedelta(hours=2))
    ContactFactory(agent=agent, name="Month", last_seen_at=now - timedelta(days=20))
    ContactFactory(agent=agent, name="Old", last_seen_at=now - timedelta(days=400))
    ContactFactory(agent=agent, name="Never", last_seen_at=None)
    assert _names(agent, schema, "last_seen_at__within=7") == ["Today"]
    assert _names(agent, schema, "last_seen_at__within=30d") == ["Month", "Today"]
    # Never seen is not "more than 90 days ago", nor "before" anything.
    assert _names(agent, schema, "last_seen_at__older=90") == ["Old"]
    assert _names(agent, schema, "last_seen_at__lt=2999-01-01") == ["Month", "Old", "Today"]
    assert _names(agent, schema, "last_seen_at__exists=false") == ["Never"]
    assert _names(agent, schema, "last_seen_at__exists=true") == ["Month", "Old", "Today"]


def test_attribute_operators_new_and_old(agent, schema):
    today = timezone.now().date()
    ContactFactory(
        agent=agent,
        name="Paris",
        attributes={
            "city": "Paris",
            "mrr": 50,
            "signup": (today - timedelta(days=3)).isoformat(),
            "paid_at": "2024-05-01T23:30:00Z",
            "plan": "Pro",
        },
    )
    ContactFactory(
        agent=agent,
        name="Lyon",
        attributes={"city": "Lyon", "mrr": 500, "signup": "2020-01-01", "beta": True},
    )
    ContactFactory(agent=agent, name="Blank", attributes={})
    assert _names(agent, schema, "attr.city__not_contains=ari") == ["Blank", "Lyon"]
    assert _names(agent, schema, "attr.mrr__between=10,100") == ["Paris"]
    assert _names(agent, schema, "attr.signup__within=7") == ["Paris"]
    assert _names(agent, schema, "attr.signup__older=365") == ["Lyon"]
    assert _names(agent, schema, "attr.signup__between=2019-12-31,2020-01-01") == ["Lyon"]
    # A date alone on a date-time attribute is the whole day.
    assert _names(agent, schema, "attr.paid_at=2024-05-01") == ["Paris"]
    assert _names(agent, schema, "attr.paid_at__lte=2024-05-01") == ["Paris"]
    assert _names(agent, schema, "attr.paid_at__gt=2024-05-01") == []
    assert _names(agent, schema, "attr.plan__exists=false") == ["Blank", "Lyon"]
    assert _names(agent, schema, "attr.mrr__ne=50") == ["Blank", "Lyon"]
    assert _names(agent, schema, "attr.beta=no") == []
    assert _names(agent, schema, "attr.beta__exists=true") == ["Lyon"]


def test_match_any_needs_one_condition_and_other_filters_still_apply(agent, schema):
    vip = TagFactory(agent=agent, name="vip")
    ContactFactory(agent=agent, name="Pro", attributes={"plan": "Pro"}).tags.add(vip)
    ContactFactory(agent=agent, name="Busy", conversation_count=5).tags.add(vip)
    ContactFactory(agent=agent, name="Both", conversation_count=5, attributes={"plan": "Pro"})
    ContactFactory(agent=agent, name="Neither", conversation_count=1)
    conditions = "attr.plan=pro&conversation_count__gte=3"
    assert _names(agent, schema, conditions) == ["Both"]
    assert _names(agent, schema, f"{conditions}&match=all") == ["Both"]
    assert _names(agent, schema, f"{conditions}&match=ANY") == ["Both", "Busy", "Pro"]
    # tag= is a filter, not a condition: it narrows whatever the conditions keep.
    assert _names(agent, schema, f"{conditions}&match=any&tag=vip") == ["Busy", "Pro"]
    # Repeating a parameter gives several conditions.
    assert _names(agent, schema, "match=any&name=pro&name=neither") == ["Neither", "Pro"]
    assert _names(agent, schema, "name=pro&name=neither") == []


def test_match_any_pages_through_every_match_once(agent, schema):
    for i in range(14):
        ContactFactory(
            agent=agent,
            name=f"P{i:02d}",
            conversation_count=i % 3,
            attributes={"mrr": i} if i % 4 == 0 else {},
        )
    filters = ContactFilterSet(
        QueryDict("match=any&conversation_count=2&attr.mrr__gte=0&ordering=name"),
        agent=agent,
        definitions=schema,
    ).validated()
    expected = sorted(filters.qs.values_list("name", flat=True))
    assert len(expected) == 7
    seen, cursor = [], None
    while True:
        page = keyset_page(filters.qs, filters.sort(), cursor=cursor, size=3)
        seen += [c.name for c in page.items]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == expected


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("emial__contains=x", "emial__contains", "No field 'emial' to filter by"),
        ("email__like=x", "email__like", "Unknown operator 'like'"),
        ("attr.nope__gt=1", "attr.nope__gt", "No attribute with key 'nope'."),
        ("created_at__gt=yesterday", "created_at__gt", "'yesterday' is not a date"),
        ("created_at__gt=2024-02-30", "created_at__gt", "is not a date"),
        ("created_at__exists=true", "created_at__exists", "does not apply to Created (a date)"),
        ("created_at__between=2024-03-01,2024-01-01", "created_at__between", "must not be after"),
        ("created_at__between=2024-03-01", "created_at__between", "two values separated"),
        ("last_seen_at__within=0", "last_seen_at__within", "from 1 to 36,500"),
        ("last_seen_at__older=soon", "last_seen_at__older", "number of days"),
        ("attr.mrr__contains=1", "attr.mrr__contains", "contains works on text attributes"),
        ("conversation_count__contains=1", "conversation_count__contains", "text fields"),
        ("attr.signup__ne=2024-01-01", "attr.signup__ne", "does not apply to Signup"),
        ("attr.city__within=3", "attr.city__within", "does not apply to City"),
        ("attr.mrr__between=a,b", "attr.mrr__between", "not a number"),
        ("tag__gt=vip", "tag__gt", "does not apply to Tag"),
        ("match=maybe", "match", "Use match=all or match=any."),
        ("email__exists=perhaps", "email__exists", "Use true"),
    ],
)
def test_bad_conditions_are_refused_naming_the_parameter(agent, schema, query, field, message):
    errors = _errors(agent, schema, query)
    assert list(errors) == [field]
    assert message in errors[field][0]


def test_more_than_fifty_conditions_are_refused(agent, schema):
    query = "&".join(f"name__ne=n{i}" for i in range(51))
    assert _errors(agent, schema, query) == {"name__ne": ["At most 50 conditions at a time."]}
    assert _names(agent, schema, "&".join(f"name__ne=n{i}" for i in range(50))) == []


# --- The API -----------------------------------------------------------------------------------


def _api_names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(c["name"] for c in response.json()["results"])


def test_the_api_reads_the_same_syntax(api, agent, schema):
    ContactFactory(agent=agent, name="Acme", email="a@acme.com", conversation_count=0)
    ContactFactory(agent=agent, name="Busy", email="b@globex.com", conversation_count=4)
    ContactFactory(agent=agent, name="Idle", email="c@initech.com", conversation_count=0)
    assert _api_names(api.get(URL, {"email__contains": "acme"})) == ["Acme"]
    any_of = {"match": "any", "email__contains": "acme", "conversation_count__gte": "1"}
    assert _api_names(api.get(URL, any_of)) == ["Acme", "Busy"]
    assert _api_names(api.get(URL, {**any_of, "match": "all"})) == []
    # Paging keeps the conditions and the match in the next link.
    first = api.get(URL, {**any_of, "page_size": 1, "ordering": "name"}).json()
    assert "match=any" in first["next"]
    assert "email__contains=acme" in first["next"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("match=sometimes", "match"),
        ("created_at__gt=2024-13-01", "created_at__gt"),
        ("last_seen_at__within=-3", "last_seen_at__within"),
        ("nickname__eq=x", "nickname__eq"),
        ("email__sounds_like=x", "email__sounds_like"),
        ("attr.ghost__exists=true", "attr.ghost__exists"),
    ],
)
def test_the_api_answers_400_naming_a_bad_condition(api, agent, schema, query, field):
    response = api.get(f"{URL}?{query}")
    assert response.status_code == 400
    body = error(response)
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == [field]


def test_the_export_reads_conditions_and_match_too(api, agent, schema):
    ContactFactory(agent=agent, name="Acme", email="a@acme.com")
    ContactFactory(agent=agent, name="Busy", email="b@globex.com", conversation_count=4)
    ContactFactory(agent=agent, name="Idle", email="c@initech.com")
    response = api.get(
        "/api/v1/contacts/export/",
        {"format": "jsonl", "match": "any", "email__contains": "acme", "conversation_count__gt": 0},
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert "Acme" in body
    assert "Busy" in body
    assert "Idle" not in body


def test_the_schema_documents_match_and_the_operators(api):
    schema = api.get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/contacts/"]["get"]
    match = next(p for p in operation["parameters"] if p["name"] == "match")
    assert match["schema"]["enum"] == ["all", "any"]
    for word in ("not_contains", "between", "within", "older", "exists", "last_seen_at"):
        assert word in operation["description"]


# --- Indexes -----------------------------------------------------------------------------------


def _plan(qs) -> str:
    sql, params = qs.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _many_contacts(agent, count: int = 3000) -> None:
    """Enough contacts, spread out like real ones, for the planner to weigh its indexes."""
    now = timezone.now()
    Contact.objects.bulk_create(
        Contact(
            agent=agent,
            name=f"Person {i}",
            email=f"person{i}@example.com",
            external_id=f"ext-{i}" if i % 100 == 0 else None,
            created_at=now - timedelta(days=i),
            last_seen_at=now - timedelta(days=i % 700) if i % 3 else None,
            conversation_count=i % 2,
        )
        for i in range(count)
    )
    ContactFactory(agent=agent, name="Zed", email="zed@zebra.example", conversation_count=9)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Contact._meta.db_table}")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("email=zed@zebra.example", ["contact_sort_email"]),
        ("name=zed", ["contact_sort_name"]),
        ("created_at__within=7", ["contact_sort_created_at"]),
        ("last_seen_at__between=2024-01-01,2024-01-02", ["contact_sort_last_seen_at"]),
        ("conversation_count__gte=3", ["contact_sort_conversation_count"]),
        ("external_id__exists=true", ["uniq_contact_external_id"]),
        ("external_id=ext-100", ["uniq_contact_external_id"]),
        (
            "match=any&email=zed@zebra.example&created_at__within=7",
            ["contact_sort_email", "contact_sort_created_at"],
        ),
    ],
)
def test_conditions_are_answered_by_indexes(agent, schema, query, indexes):
    _many_contacts(agent)
    filters = ContactFilterSet(
        QueryDict(query),
        agent=agent,
        definitions=schema,
        queryset=Contact.objects.filter(agent=agent, deleted_at__isnull=True),
    ).validated()
    plan = _plan(filters.qs)
    assert "Seq Scan" not in plan, plan
    for index in indexes:
        assert index[:30] in plan, plan  # index names stop at 30 characters


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
def test_contains_on_searched_fields_asks_the_trigram_index_too(agent, schema):
    """A substring of a name, email, phone or external id is also one of search_text, which
    the trigram index answers, as it answers the search box (a million contacts: the few
    matches, not every row)."""
    ContactFactory(agent=agent, name="Zed", email="zed@zebra.example")
    for query in ("email__contains=ZEBRA", "name__contains=zed", "external_id__contains=z"):
        filters = ContactFilterSet(QueryDict(query), agent=agent, definitions=schema)
        where = str(filters.validated().qs.query).split(" WHERE ", 1)[1]
        assert '"search_text"' in where, where
        assert where.count("LIKE") == 2, where
    for query in ("company__contains=zebra", "email__not_contains=zebra"):
        filters = ContactFilterSet(QueryDict(query), agent=agent, definitions=schema)
        assert "search_text" not in str(filters.validated().qs.query).split(" WHERE ", 1)[1]
