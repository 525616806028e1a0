"""Contact search through its index (contacts.search_index), on both databases: the same
contacts as a substring scan of search_text, whatever wrote them, and an erased person
leaves the index. On SQLite the index is the FTS5 trigram table kept by triggers; these
tests also read it directly and show the table's search asks it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts import services
from contacts.models import Contact
from contacts.query.filterset import ContactFilterSet
from contacts.search_index import (
    FTS_TRIGGERS,
    fts_install,
    fts_narrows,
    fts_query,
    fts_supported,
)
from core.actors import Actor
from tests.factories import ContactFactory, ConversationFactory, TagFactory
from tests.helpers import agent_url, contact_url, list_url, table_names
from transfers.imports.engine import import_run
from transfers.services import import_create, import_start

pytestmark = pytest.mark.django_db

SQLITE = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the FTS5 table exists on SQLite only"
)

# The clause by which a query reads the index's matches.
NARROWED = "rowid IN (SELECT rowid FROM contact_search WHERE contact_search MATCH"

PEOPLE = [
    ("Ada Lovelace", "ada@analytical.engine", "crm-001", "+14155550101"),
    ("Grace Hopper", "grace@cobol.navy", "crm-002", ""),
    ('Dan "the man" O\'Neil', "dan@oneil.ie", None, "+353851234567"),
    ("Zoë Martín", "zoe@sevilla.es", "ext_under_score", ""),
    ("Percent Club", "100%club@pct.org", "crm-100%", ""),
    ("Martha Stewart", "martha@homes.com", None, "+12125550199"),
    ("Smart Mart", "", "mart-42", ""),
]
NEEDLES = [
    "mart",  # several, in names, emails and external ids
    "MART",  # any case
    "ada",
    "analytical.engine",
    "crm-00",
    "the man",  # with a space
    '"the',  # a double quote (FTS5 query syntax)
    "o'neil",  # a single quote (SQL)
    "100%",  # LIKE's wildcard, literally
    "_under",  # LIKE's other wildcard
    "zoë",  # beyond ASCII
    "martín",
    "555",  # phone digits
    "ma",  # too short for trigrams: the scan answers
    "nobody-at-all",
]


@pytest.fixture
def people(agent):
    return [
        ContactFactory(agent=agent, name=n, email=e, external_id=x, phone=p)
        for n, e, x, p in PEOPLE
    ]


def _scan(agent, needle: str) -> set[str]:
    """Who a plain substring scan of search_text finds (what search promises)."""
    return {
        name
        for name, text in Contact.objects.filter(agent=agent).values_list("name", "search_text")
        if needle.lower() in text
    }


def _searched(agent, needle: str, **params: str) -> tuple[set[str], list[str]]:
    """Who the table's search finds, and the SQL it ran."""
    with CaptureQueriesContext(connection) as queries:
        filters = ContactFilterSet({"q": needle, **params}, agent=agent, definitions={})
        found = set(filters.qs.values_list("name", flat=True))
    return found, [q["sql"] for q in queries.captured_queries]


def _fts_rowids(text: str) -> list[int]:
    """The rows the search index holds every trigram of `text` for."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rowid FROM contact_search WHERE contact_search MATCH %s", [fts_query(text)]
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.parametrize("needle", NEEDLES)
def test_search_finds_exactly_what_a_substring_scan_finds(agent, people, other_agent, needle):
    ContactFactory(agent=other_agent, name="Mart Elsewhere", email="mart@other.org")
    found, sql = _searched(agent, needle)
    assert found == _scan(agent, needle)
    assert "Mart Elsewhere" not in found
    if connection.vendor == "sqlite" and fts_supported(connection):
        # Three characters or more: the trigram index narrows the search first.
        asked = any(NARROWED in s for s in sql)
        assert asked is (len(needle) >= 3)


def test_the_expected_contacts_are_found(agent, people):
    # The scan itself, pinned for a few needles, so the comparison above cannot pass empty.
    assert _scan(agent, "mart") == {"Zoë Martín", "Martha Stewart", "Smart Mart"}
    assert _searched(agent, "MART")[0] == {"Zoë Martín", "Martha Stewart", "Smart Mart"}
    assert _searched(agent, "100%")[0] == {"Percent Club"}
    assert _searched(agent, "_under")[0] == {"Zoë Martín"}
    assert _searched(agent, '"the')[0] == {'Dan "the man" O\'Neil'}


def test_the_table_and_the_inbox_search_through_the_index(staff_client, agent, people):
    TagFactory(agent=agent, name="martians")  # a tag name that matches widens the search
    response = staff_client.get(list_url(agent), {"q": "lovelace"})
    assert table_names(response) == ["Ada Lovelace"]
    response = staff_client.get(list_url(agent), {"q": "mart", "ordering": "name"})
    assert table_names(response) == ["Martha Stewart", "Smart Mart", "Zoë Martín"]

    by_name = {p.name: p for p in people}
    ada = ConversationFactory(agent=agent, contact=by_name["Ada Lovelace"], status="open")
    grace = ConversationFactory(agent=agent, contact=by_name["Grace Hopper"], status="open")
    with CaptureQueriesContext(connection) as queries:
        inbox = staff_client.get(f"/a/{agent.public_id}/inbox/", {"q": "analytical", "status": ""})
    html = inbox.content.decode()
    assert f"/inbox/{ada.pk}/" in html
    assert f"/inbox/{grace.pk}/" not in html
    if connection.vendor == "sqlite" and fts_supported(connection):
        assert any(NARROWED in q["sql"] for q in queries.captured_queries)


def test_a_broad_substring_is_left_to_the_scan(agent, people, monkeypatch):
    monkeypatch.setattr("contacts.search_index.FTS_NARROW_LIMIT", 2)
    # "mart" matches three contacts, above the (lowered) limit: the scan in table order is
    # cheaper than reading every match; the results are the same.
    assert fts_narrows(connection, "mart") is False
    found, sql = _searched(agent, "mart")
    assert found == {"Zoë Martín", "Martha Stewart", "Smart Mart"}
    assert not any(NARROWED in s for s in sql)


def test_every_write_path_keeps_the_index_in_step(agent, admin_user, people):
    admin = Actor.staff(admin_user, is_admin=True)
    created = services.contact_create(
        agent=agent, actor=admin, data={"name": "Quentin Blake", "email": "qb@ink.org"}
    )
    assert _searched(agent, "quentin")[0] == {"Quentin Blake"}

    services.contact_update(contact=created.contact, actor=admin, data={"name": "Roald Dahl"})
    assert _searched(agent, "quentin")[0] == set()
    assert _searched(agent, "roald")[0] == {"Roald Dahl"}

    # An attribute or last-seen change leaves the index alone and the contact findable.
    Contact.objects.filter(pk=created.contact.pk).update(attributes={"x": 1})
    assert _searched(agent, "roald")[0] == {"Roald Dahl"}

    job = import_create(
        agent=agent,
        upload=SimpleUploadedFile(
            "people.csv",
            b"external_id,name,email\ncrm-900,Imported Iris,iris@csv.org\n"
            b"crm-001,Ada King,ada@analytical.engine\n",
        ),
        actor_label="import by test",
    )
    import_start(job=job, dry_run=False)
    import_run(job.pk)
    assert _searched(agent, "iris")[0] == {"Imported Iris"}
    assert _searched(agent, "lovelace")[0] == set()  # renamed by the import
    assert _searched(agent, "ada k")[0] == {"Ada King"}

    grace = next(p for p in people if p.name == "Grace Hopper")
    martha = next(p for p in people if p.name == "Martha Stewart")
    services.contact_merge(primary=martha, secondary=grace, actor=admin)
    assert not Contact.objects.filter(pk=grace.pk).exists()
    assert _searched(agent, "cobol")[0] == set()

    Contact.objects.filter(name="Smart Mart").delete()
    assert _searched(agent, "mart-42")[0] == set()
    if connection.vendor == "sqlite" and fts_supported(connection):
        for gone in ("quentin", "lovelace", "cobol.navy", "mart-42"):
            assert _fts_rowids(gone) == [], gone
        assert len(_fts_rowids("roald")) == 1


def test_an_erased_person_leaves_the_search_index(agent, admin_user, people):
    admin = Actor.staff(admin_user, is_admin=True)
    ada = next(p for p in people if p.name == "Ada Lovelace")
    assert _searched(agent, "lovelace")[0] == {"Ada Lovelace"}

    services.contact_erase(contact=ada, actor=admin)

    for needle in ("lovelace", "analytical", "crm-001", "4155550101"):
        assert _searched(agent, needle)[0] == set(), needle
        assert _searched(agent, needle)[0] == _scan(agent, needle)
    # The erased contact is soft-deleted: not found in the deleted view either.
    assert _searched(agent, "lovelace", deleted="true")[0] == set()
    if connection.vendor == "sqlite" and fts_supported(connection):
        assert _fts_rowids("lovelace") == []
        assert _fts_rowids("analytical") == []


@SQLITE
def test_missing_triggers_are_made_again_and_the_index_refilled(agent, people):
    with connection.cursor() as cursor:
        for name in FTS_TRIGGERS:
            cursor.execute(f"DROP TRIGGER {name}")
    # Unseen by the index: a migration that remakes the table leaves it so.
    Contact.objects.filter(name="Grace Hopper").update(name="Grace Brewster")
    ContactFactory(agent=agent, name="Unindexed Ursula")
    assert _fts_rowids("brewster") == []

    assert fts_install(connection) is True  # what runs after every migrate

    assert _searched(agent, "brewster")[0] == {"Grace Brewster"}
    assert _searched(agent, "ursula")[0] == {"Unindexed Ursula"}
    assert _fts_rowids("grace hopper") == []
    assert fts_install(connection) is False  # nothing missing: nothing done


@SQLITE
def test_the_command_rebuilds_the_index(agent, people, capsys):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO contact_search(contact_search) VALUES ('delete-all')")
    assert _searched(agent, "lovelace")[0] == set()  # an emptied index finds nothing

    call_command("search_index", "--rebuild")

    assert _searched(agent, "lovelace")[0] == {"Ada Lovelace"}
    assert "FTS5 trigram index" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
@SQLITE
def test_vacuum_keeps_the_index_pointing_at_the_right_contacts(agent):
    for n in range(30):
        ContactFactory(agent=agent, name=f"Person {n:02d}", email=f"p{n}@vacuum.org")
    Contact.objects.filter(name__in=[f"Person {n:02d}" for n in range(0, 30, 3)]).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")
    assert _searched(agent, "person 04")[0] == {"Person 04"}
    assert _searched(agent, "p17@vacuum")[0] == {"Person 17"}
    assert _searched(agent, "person 03")[0] == set()


def test_the_command_reports_the_index(capsys):
    call_command("search_index")
    out = capsys.readouterr().out
    assert (
        "trigram index contact_search_trgm" if connection.vendor == "postgresql" else "SQLite"
    ) in out


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="REINDEX is PostgreSQL's")
def test_the_command_rebuilds_the_trigram_index_on_postgresql(agent, capsys):
    ContactFactory(agent=agent, name="Ada Lovelace")
    call_command("search_index", "--rebuild")
    assert "Rebuilt in" in capsys.readouterr().out
    assert _searched(agent, "lovelace")[0] == {"Ada Lovelace"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = 'contact_search_trgm'"
        )
        assert cursor.fetchone() == (True,)


@SQLITE
def test_without_fts5_search_scans_and_finds_the_same(agent, people, monkeypatch, capsys):
    """An SQLite library without FTS5 or its trigram tokenizer (before 3.34): no index is
    asked, the scan answers, and the command says so."""
    monkeypatch.setattr("contacts.search_index._library_has_fts5_trigram", lambda: False)
    found, sql = _searched(agent, "mart")
    assert found == {"Zoë Martín", "Martha Stewart", "Smart Mart"}
    assert not any("contact_search" in s for s in sql)
    call_command("search_index")
    assert "scans the contacts" in capsys.readouterr().out


# --- Over HTTP: erasure and merges leave nothing to find -------------------------------------


def _api_found(api, needle: str) -> set[str]:
    response = api.get("/api/v1/contacts/", {"q": needle})
    assert response.status_code == 200
    return {c["name"] for c in response.json()["results"]}


def _index_consistent() -> None:
    """On SQLite, FTS5's own check that the index holds exactly the contacts' text."""
    if connection.vendor == "sqlite" and fts_supported(connection):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO contact_search(contact_search) VALUES ('integrity-check')")


def test_a_person_erased_from_the_dashboard_or_the_api_is_found_nowhere(
    admin_client, api, agent, people
):
    ada = next(p for p in people if p.name == "Ada Lovelace")
    dan = next(p for p in people if p.name.startswith("Dan"))
    assert _api_found(api, "lovelace") == {"Ada Lovelace"}

    response = admin_client.post(contact_url("erase", ada), {"confirm": ada.email})
    assert response.status_code == 302
    assert api.post(f"/api/v1/contacts/{dan.pk}/erase/").status_code == 204

    for needle in ("lovelace", "analytical", "crm-001", "oneil", "dan@", "4155550101"):
        assert _api_found(api, needle) == set(), needle
        table = admin_client.get(list_url(agent), {"q": needle})
        assert table_names(table) == [], needle
        if connection.vendor == "sqlite" and fts_supported(connection):
            assert _fts_rowids(needle) == [], needle
    _index_consistent()
    # Everyone else is still found.
    assert _api_found(api, "hopper") == {"Grace Hopper"}


def test_a_contact_merged_away_over_http_is_found_only_as_the_one_it_joined(
    staff_client, api, agent, people
):
    grace = next(p for p in people if p.name == "Grace Hopper")
    martha = next(p for p in people if p.name == "Martha Stewart")
    dan = next(p for p in people if p.name.startswith("Dan"))
    response = staff_client.post(
        agent_url("contacts:merge", agent), {"primary": martha.pk, "secondary": grace.pk}
    )
    assert response.status_code == 302
    merged = api.post(
        "/api/v1/contacts/merge/", {"primary": str(martha.pk), "secondary": str(dan.pk)}
    )
    assert merged.status_code == 200

    # The merged-away contacts' own text is gone; what the primary took from them (a blank
    # it filled) is found as the primary.
    assert _api_found(api, "grace hopper") == set()
    assert _api_found(api, "the man") == set()
    assert _api_found(api, "oneil.ie") == set()  # the primary kept its own email
    assert _api_found(api, "crm-002") == {"Martha Stewart"}  # Grace's external id moved over
    assert table_names(staff_client.get(list_url(agent), {"q": "hopper"})) == []
    _index_consistent()
