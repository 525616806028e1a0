"""`make bench` on SQLite: the import and table sections run there (the timings themselves
are for `make bench`, never asserted here); the sections that measure PostgreSQL are refused
by name; the SQLite report goes between its own markers, and only when they exist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from bench import database, imports, table
from bench.__main__ import SECTIONS, command_line, report_block, sections_for, write_report
from bench.context import BenchContext
from contacts.models import AuditEvent, Contact
from tests.factories import ContactFactory
from workspaces.services import api_key_create

ROOT = Path(__file__).resolve().parents[2]
only_sqlite = pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite benchmark")


def _ctx(agent, admin_user, contacts: int) -> BenchContext:
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    return BenchContext(
        agent=agent,
        user=admin_user,
        api_key=api_key_create(agent=agent, name="bench").raw,
        contacts=contacts,
    )


@only_sqlite
@pytest.mark.django_db(transaction=True)
def test_the_import_section_imports_its_file_beside_a_plain_insert_and_cleans_up(
    agent, admin_user, monkeypatch
):
    # The export probes run in child processes: they read the test database's file.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{connection.settings_dict['NAME']}")
    ContactFactory.create_batch(40, agent=agent)
    ctx = _ctx(agent, admin_user, 40)
    lines: list[str] = []

    rows = imports.run(ctx, repeat=1, log=lines.append)

    imported, *exports = rows
    assert imported.work == "import 40-row CSV into an agent holding 40"
    assert imported.target == "≥ 5,000 rows/s"
    assert "rows/s)" in imported.measured
    assert imported.baseline.startswith("plain INSERT into an indexed copy ")
    assert imported.ratio.endswith("× that INSERT")
    assert imported.ok is not None
    assert any("'status': 'completed', 'error': '', 'created': 40" in line for line in lines)
    assert [row.work for row in exports] == [
        "export 40 contacts as CSV",
        "export 40 contacts as JSONL",
    ]
    assert all("rows/s, peak " in row.measured for row in exports)
    # The agent keeps its size and history; the scratch table is gone.
    assert Contact.objects.filter(agent=agent).count() == 40
    assert not Contact.objects.filter(external_id__startswith="imp_").exists()
    assert not AuditEvent.objects.filter(agent=agent, channel="import").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'bench_insert_floor%'")
        assert cursor.fetchone()[0] == 0


@only_sqlite
@pytest.mark.django_db
def test_the_table_section_measures_every_page_beside_the_admin(agent, admin_user):
    ContactFactory.create_batch(3, agent=agent)
    rows = table.run(_ctx(agent, admin_user, 3), repeat=1, log=lambda *args: None)

    assert [row.work for row in rows] == [f"table: {label}" for label, *_ in table.SCENARIOS]
    assert all("HTTP" not in row.measured for row in rows), [r.measured for r in rows]
    for row, (_label, _params, admin) in zip(rows, table.SCENARIOS, strict=True):
        assert ("admin p95 " in row.baseline) == (admin is not None), row.work
        assert row.ok is not None
    # The page's own SQL, run bare (a filter that matches no tag here makes no page query).
    sorts = [row for row in rows if row.work.startswith("table: sort by")]
    assert all("SQL p95 " in row.baseline for row in sorts), [r.baseline for r in sorts]


def test_sqlite_runs_the_table_and_import_sections_and_refuses_the_others_by_name():
    assert sections_for("sqlite", None) == (["table", "import"], None)
    assert sections_for("sqlite", "import") == (["import"], None)
    assert sections_for("postgresql", None) == (list(SECTIONS), None)
    assert sections_for("postgresql", "api,load") == (["api", "load"], None)

    wanted, problem = sections_for("sqlite", "table,identify,load")
    assert wanted == []
    assert problem.startswith("The identify, load sections measure PostgreSQL")
    assert "DATABASE_URL=postgres://" in problem
    assert sections_for("sqlite", "tables")[1].startswith("Unknown sections: tables;")


def test_the_sqlite_report_replaces_its_own_block_only_when_the_markers_exist():
    doc = (
        "# Performance\n\n<!-- bench:start -->\nold PostgreSQL\n<!-- bench:end -->\n\n"
        "<!-- bench-sqlite:start -->\nold SQLite\n<!-- bench-sqlite:end -->\nAfter.\n"
    )
    written = write_report(doc, "new SQLite\n", "sqlite")
    assert "old PostgreSQL" in written
    assert "old SQLite" not in written
    assert "<!-- bench-sqlite:start -->\nnew SQLite\n<!-- bench-sqlite:end -->\nAfter.\n" in written

    without = "# Performance\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n"
    assert write_report(without, "new SQLite\n", "sqlite") is None
    assert write_report(without, "new\n", "postgresql").endswith(
        "<!-- bench:start -->\nnew\n<!-- bench:end -->\n"
    )


def test_a_ten_million_run_writes_its_own_block_beside_the_default_one():
    doc = "# Performance\n\n<!-- bench:start -->\nold 1M\n<!-- bench:end -->\n"
    assert report_block("postgresql", 1_000_000) == "postgresql"
    assert report_block("postgresql", 10_000_000) == "postgresql-10m"
    assert report_block("sqlite", 10_000_000) == "sqlite"
    first = write_report(doc, "10M run\n", "postgresql-10m")
    assert "old 1M" in first
    assert first.endswith(
        "## Benchmark at ten million contacts\n\n"
        "<!-- bench-10m:start -->\n10M run\n<!-- bench-10m:end -->\n"
    )
    again = write_report(first, "10M again\n", "postgresql-10m")
    assert "10M run" not in again
    assert "old 1M" in again
    assert again.count("ten million contacts") == 1


def test_the_report_names_the_command_that_reproduces_it():
    url = "postgres://bench:s3cret@db.example:5433/rapport_bench_10m"
    assert command_line("postgresql", url, 10_000_000) == (
        "DATABASE_URL=postgres://bench@db.example:5433/rapport_bench_10m make bench "
        'BENCH_ARGS="--contacts 10000000"'
    )
    assert command_line(
        "postgresql", "postgres://postgres@127.0.0.1:5432/rapport_bench", 1_000_000
    ) == ("DATABASE_URL=postgres://postgres@127.0.0.1:5432/rapport_bench make bench")
    assert command_line("sqlite", "sqlite:///var/bench.sqlite3", 100_000) == "make bench"


def test_without_database_url_the_bench_uses_its_own_sqlite_file(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert database.bench_database_url() == f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}"
    assert database.sqlite_path(database.bench_database_url()) == ROOT / "var" / "bench.sqlite3"

    file = tmp_path / "folder" / "bench.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{file}")
    assert database.main() == 0
    assert file.parent.is_dir()
    assert "the table and import sections" in capsys.readouterr().out
    monkeypatch.setenv("DATABASE_URL", "mysql://localhost/bench")
    assert database.main() == 2


def test_asking_sqlite_for_a_postgresql_section_exits_2_before_seeding(tmp_path):
    file = tmp_path / "bench.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{file}"}
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--sections", "table,api", "--no-write"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "The api section measures PostgreSQL" in result.stderr
    assert not file.exists()
