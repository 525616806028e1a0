"""`manage.py serve` (what `make serve` runs) as an operator meets it: production settings,
gunicorn and a task worker, ready on /readyz, pages and hashed static files with a
far-future cache header, JSON request lines, and a graceful stop on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from core.models import WorkerHeartbeat
from tests.transfers.test_worker_fleet import (
    BATCH,
    ROWS,
    assert_written_exactly_once,
    mid_job,
    queued_import,
)
from tests.webhooks.test_worker_process import database_url, wait_for
from transfers.models import ContactImport

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(port: int, log: Path, **extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "RAPPORT_ENV": "production",
        "SECRET_KEY": "serve-test-" + "k" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BEHIND_TLS_PROXY": "true",
        "DATABASE_URL": database_url(),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "2",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(log.parent / "prometheus"),
        "METRICS_TOKEN": "scrape-token",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),  # where this test's uploads are
        **extra,
    }
    env.pop("DEBUG", None)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--skip-migrate"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def get(port: int, path: str, **headers: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"X-Forwarded-Proto": "https", **headers})
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def answering(port: int) -> bool:
    try:
        return get(port, "/healthz").status == 200
    except OSError:
        return False


@pytest.mark.django_db(transaction=True)
def test_serve_runs_production_with_a_worker_static_files_and_stops_on_sigterm(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    server = serve(port, log)
    try:
        wait_for(lambda: answering(port), 90, "gunicorn to answer")
        wait_for(WorkerHeartbeat.objects.exists, 60, "the task worker's heartbeat")

        ready = get(port, "/readyz")
        assert ready.status == 200, ready.body
        assert json.loads(ready.body)["status"] == "ready"

        page = get(port, "/login/", **{"X-Request-ID": "probe-1"})
        assert page.status == 200
        assert page.getheader("X-Request-ID") == "probe-1"
        assert page.getheader("Strict-Transport-Security")  # production's HTTPS headers
        stylesheet = re.search(rb'href="(/static/css/rapport\.[0-9a-f]{12}\.css)"', page.body)
        assert stylesheet, "the page links the hashed stylesheet"
        static = get(port, stylesheet.group(1).decode(), **{"Accept-Encoding": "gzip"})
        assert static.status == 200
        assert static.getheader("Content-Encoding") == "gzip"
        cache = static.getheader("Cache-Control")
        max_age = int(re.search(r"max-age=(\d+)", cache).group(1))
        assert max_age >= 365 * 86400
        assert "immutable" in cache

        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        plain.request("GET", "/login/")
        assert plain.getresponse().status == 301  # plain HTTP goes to HTTPS

        metrics = get(port, "/metrics", Authorization="Bearer scrape-token")
        assert metrics.status == 200
        assert b'view="login"' in metrics.body  # counted by one gunicorn worker, read by any
        assert get(port, "/metrics").status == 404
    finally:
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        status = server.wait(60)
    assert status == 0
    assert time.monotonic() - started < 30
    assert not WorkerHeartbeat.objects.exists()  # the worker stopped cleanly

    text = log.read_text().splitlines()
    lines = [json.loads(line) for line in text if line.startswith("{")]
    # gunicorn's own lines are JSON too: no plain "[date] [pid] [INFO]" line is left.
    assert not [line for line in text if line.startswith("[")]
    assert any(line.get("logger") == "gunicorn.error" for line in lines)
    requests = [line for line in lines if line.get("event") == "request"]
    login = next(line for line in requests if line["request_id"] == "probe-1")
    assert login["path"] == "/login/"
    assert login["status"] == 200
    assert login["view"] == "login"


@pytest.mark.django_db(transaction=True)
def test_sigterm_mid_import_stops_serve_and_the_import_resumes_exactly_after_a_restart(
    agent, tmp_path
):
    job = queued_import(agent, "srv")  # queued before serve starts: its worker takes it
    port = free_port()
    small_batches = {"IMPORT_BATCH_ROWS": str(BATCH), "IMPORT_FAST_PATH": "false"}
    server = serve(port, tmp_path / "first.log", **small_batches)
    try:
        wait_for(lambda: mid_job([job.pk]) is not None, 120, "the import to be half-way")
    finally:
        server.send_signal(signal.SIGTERM)
        status = server.wait(60)
    assert status == 0
    job.refresh_from_db()
    assert job.status == "queued"  # handed back after its last committed batch
    assert BATCH <= job.processed_rows < ROWS
    assert job.processed_rows % BATCH == 0

    server = serve(port, tmp_path / "second.log", **small_batches)
    try:
        wait_for(
            lambda: ContactImport.objects.get(pk=job.pk).status == "completed",
            180,
            "the import to finish after the restart",
        )
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
    assert_written_exactly_once(job, "srv")
