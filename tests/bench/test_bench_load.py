"""The benchmark's load section: its rows hold the targets (no errors, the import done, the
connections within the pools' bound), the server gets production's settings, and on
PostgreSQL a short run against `manage.py serve` passes and leaves the agent as it was
(the timings are for `make bench`)."""

from __future__ import annotations

import os

import pytest
from django.contrib.sessions.models import Session
from django.db import connection

from bench import load
from bench.context import BenchContext
from contacts.models import AuditEvent, Contact
from tests.factories import ContactFactory
from transfers.models import ContactImport
from transfers.tasks import import_task_rows
from workspaces.services import api_key_create


def test_a_run_is_a_minute_unless_the_agent_is_ci_sized_or_the_environment_says(monkeypatch):
    monkeypatch.delenv("BENCH_LOAD_SECONDS", raising=False)
    assert load.duration_s(1_000_000) == 60
    assert load.duration_s(3_000) == 5
    monkeypatch.setenv("BENCH_LOAD_SECONDS", "12")
    assert load.duration_s(1_000_000) == 12


def test_the_server_runs_in_production_sized_for_the_bound_and_labels_its_connections():
    env = load.server_env(port=8123, secret_key="k" * 50, metrics_dir="/tmp/m", app_name="lbl")
    assert env["RAPPORT_ENV"] == "production"
    assert env["PORT"] == "8123"
    assert env["PGAPPNAME"] == "lbl"
    assert (env["WEB_CONCURRENCY"], env["GUNICORN_THREADS"], env["DB_POOL_SIZE"]) == ("3", "8", "8")
    assert env["WORKER_PROCESSES"] == "1"
    assert load.CONNECTION_BOUND == 32
    assert "BEHIND_TLS_PROXY" not in env


def test_a_kind_with_an_error_or_no_answer_fails_its_row():
    met = load.kind_row("api", 35, [10.0] * 18 + [90.0] * 2, [], seconds=2)
    assert met.ok is True
    assert met.work == "load: API read (35 % of calls)"
    assert met.measured == "20 calls, 10 req/s; p50 10.0 ms, p95 90.0 ms, p99 90.0 ms; 0 errors"
    assert load.kind_row("api", 35, [10.0], ["HTTP 503"], seconds=2).ok is False
    assert load.kind_row("table", 25, [], [], seconds=2).ok is False


def test_the_import_row_wants_every_row_created():
    done = load.ImportOutcome(rows=100, status="completed", created=100, upload_ms=12.0)
    done.seconds, done.finished_at_s = 2.0, 4.0
    row = load.import_row(done, seconds=5)
    assert row.ok is True
    assert row.measured == (
        "2.0 s from upload to completed (50 rows/s; upload 12.0 ms), finished 4.0 s into the load"
    )
    done.finished_at_s = 6.5
    assert load.import_row(done, seconds=5).measured.endswith("finished 1.5 s after the load")
    short = load.ImportOutcome(rows=100, status="completed", created=99)
    assert load.import_row(short, seconds=5).ok is False
    failed = load.ImportOutcome(rows=100, status="failed", error="poll: HTTP 500")
    row = load.import_row(failed, seconds=5)
    assert row.ok is False
    assert row.measured == "failed: poll: HTTP 500 (0 of 100 created)"


def test_the_connections_row_holds_the_bound_and_wants_the_server_seen():
    sampler = load.ConnectionSampler("lbl")
    sampler.samples = [(3, 1), (32, 9), (20, 4)]
    row = load.connections_row(sampler)
    assert row.ok is True
    assert row.target == "≤ 32"
    assert row.measured == "max 32 open (9 busy) in 3 samples every 0.25 s"
    sampler.samples.append((33, 2))
    assert load.connections_row(sampler).ok is False
    # No connection with the server's label: the count missed it.
    sampler.samples = [(0, 0)]
    assert load.connections_row(sampler).ok is False


def test_cpu_use_is_counted_over_the_timed_part_for_backends_old_and_new():
    start = load.Usage(clients=1.0, server=10.0, backends={11: 2.0, 12: 1.0})
    end = load.Usage(clients=1.5, server=16.0, backends={11: 3.5, 13: 0.25})
    # Backend 12 closed meanwhile (its share is lost); 13 opened during the timed part.
    assert end.since(start) == (0.5, 6.0, 1.75)


def test_the_server_processes_are_found_by_their_process_group():
    own = load.Usage.now(os.getpgid(0), [os.getpid()])
    assert own.server > 0
    assert own.backends[os.getpid()] > 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark measures PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_short_run_against_serve_passes_and_leaves_the_agent_as_it_was(
    agent, admin_user, monkeypatch, tmp_path
):
    monkeypatch.setenv("BENCH_LOAD_SECONDS", "2")
    monkeypatch.setattr(load, "CLIENTS", 4)
    monkeypatch.setattr(load, "IMPORT_ROWS", 30)
    monkeypatch.setattr(load, "IMPORT_FILE", tmp_path / "bench-load-import.csv")
    monkeypatch.setattr(load, "SERVER_LOG", tmp_path / "server.log")
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    ContactFactory.create_batch(60, agent=agent)
    ctx = BenchContext(
        agent=agent,
        user=admin_user,
        api_key=api_key_create(agent=agent, name="bench").raw,
        contacts=60,
    )
    lines: list[str] = []
    rows = load.run(ctx, repeat=1, log=lines.append)
    assert [row.ok for row in rows] == [True] * 5, [(r.work, r.measured) for r in rows]
    assert rows[3].work == "load: import of a 30-row CSV through the API and the task worker"
    assert any("server stopped with status 0" in line for line in lines), lines
    # The import's contacts, audit entries, job and task row and the session are gone.
    assert Contact.objects.filter(agent=agent).count() == 60
    assert not AuditEvent.objects.filter(agent=agent, channel="import").exists()
    assert not ContactImport.objects.exists()
    assert not import_task_rows().exists()
    assert not Session.objects.exists()
    assert not (tmp_path / "bench-load-import.csv").exists()
