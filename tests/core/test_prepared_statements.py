"""On PostgreSQL statements travel with server-side parameters and a connection prepares the
ones it runs again and again (DB_PREPARE_THRESHOLD), so the widget's hot path is planned
once per connection, not on every call. A prepared statement must survive a migration that
adds a column under it, which `SELECT *` would not ("cached plan must not change result
type")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from contacts import sql as contacts_sql
from core.prepared import MARK
from tests.identity.conftest import Widget
from workspaces import sql as workspaces_sql

postgres_only = pytest.mark.skipif(
    not settings.IS_POSTGRES, reason="prepared statements are PostgreSQL's"
)


def _prepared() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return dict(cursor.fetchall())


@postgres_only
@pytest.mark.django_db
def test_a_returning_visitors_identify_runs_on_prepared_statements(agent, settings):
    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "1000000/minute"
    widget = Widget(agent)
    for _ in range(8):
        response = widget.jwt(user_id="u-1", contact_attributes={"email": "u1@example.com"})
        assert response.status_code == 200
        assert response.json()["contact"]["identity"] == "verified"

    prepared = _prepared()
    # One statement: the contact marked seen and read back by its external id, the session
    # upserted, the same-email probe (identity.sql.RETURNING_VISITOR).
    lookup = next((s for s in prepared if "AND external_id = $5 RETURNING id," in s), None)
    assert lookup is not None, list(prepared)
    assert lookup.startswith(MARK)
    assert lookup.removeprefix(MARK).startswith("WITH contact AS (UPDATE contacts_contact SET")
    assert "INSERT INTO identity_visitorsession" in lookup
    assert prepared[lookup] >= 2  # planned once, then run from the prepared statement


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_prepared_statements_still_answer_after_a_migration_adds_columns(agent, settings):
    """A newer release's migration runs from another process while this one serves: the
    statements this connection prepared for identify (the contact lookup, the session upsert,
    the agent and its secrets) must keep answering."""
    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "1000000/minute"
    widget = Widget(agent)
    for _ in range(7):
        assert widget.jwt(user_id="u-2").status_code == 200
    assert any("external_id = $5 RETURNING" in s for s in _prepared())

    db = connection.settings_dict
    conninfo = (
        f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} "
        f"dbname={db['NAME']}"
    )
    tables = ("contacts_contact", "identity_visitorsession", "workspaces_agent")
    with psycopg.connect(conninfo, autocommit=True) as migration:
        for table in tables:
            migration.execute(f"ALTER TABLE {table} ADD COLUMN newer_release integer")
    try:
        response = widget.jwt(user_id="u-2", contact_attributes={"name": "Still Here"})
        assert response.status_code == 200, response.content
        assert response.json()["contact"]["name"] == "Still Here"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as migration:
            for table in tables:
                migration.execute(f"ALTER TABLE {table} DROP COLUMN newer_release")


def test_hot_lookups_name_their_columns():
    for statement in (
        *contacts_sql.LOCKED_BY.values(),
        workspaces_sql.AGENT_BY_PUBLIC_ID,
        workspaces_sql.IDENTITY_SECRETS,
    ):
        assert "SELECT *" not in statement
        assert "SELECT id, " in statement or "SELECT id," in statement


@postgres_only
@pytest.mark.django_db
def test_the_prepare_threshold_reaches_the_connection():
    raw = connection.cursor().connection
    assert raw.prepare_threshold == settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    assert settings.DATABASES["default"]["OPTIONS"]["server_side_binding"] is True


def _options_with(**env: str) -> dict:
    """The default database's OPTIONS as settings read them with this environment."""
    code = (
        "import json, config.settings as s; "
        "o = s.DATABASES['default']['OPTIONS']; "
        "print(json.dumps({k: o.get(k) for k in ('server_side_binding', 'prepare_threshold')}))"
    )
    environ = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/any",
        "DB_SERVER_SIDE_BINDING": "",
        "DB_PREPARE_THRESHOLD": "",
        **env,
    }
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_the_switches_turn_preparing_and_server_side_binding_off():
    assert _options_with() == {"server_side_binding": True, "prepare_threshold": 5}
    assert _options_with(DB_PREPARE_THRESHOLD="0")["prepare_threshold"] is None
    assert _options_with(DB_PREPARE_THRESHOLD="2")["prepare_threshold"] == 2
    assert _options_with(DB_SERVER_SIDE_BINDING="false")["server_side_binding"] is False


@postgres_only
@pytest.mark.django_db
def test_dashboard_queries_are_planned_for_their_own_values_every_time(
    agent, staff_client, settings
):
    """Only the marked hand-written statements are kept prepared: a prepared ORM query may
    get a generic plan, made without its values, after a few runs, and the table's search
    got one that read the whole agent (1.5 s at ten million contacts instead of 8 ms)."""
    from tests.factories import ContactFactory
    from tests.helpers import list_url

    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "1000000/minute"
    ContactFactory.create_batch(3, agent=agent, name="Martha Jones")
    for _ in range(8):
        response = staff_client.get(list_url(agent), {"q": "mart"})
        assert response.status_code == 200
        assert "Martha Jones" in response.content.decode()
    widget = Widget(agent)
    for _ in range(8):
        assert widget.jwt(user_id="u-1").status_code == 200

    statements = list(_prepared())
    assert statements, "the identify statements are prepared"
    assert all(s.startswith(MARK) for s in statements), [
        s[:80] for s in statements if not s.startswith(MARK)
    ]
    assert not any('"contacts_contact"' in s for s in statements)  # the ORM quotes names
