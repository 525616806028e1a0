"""Health, readiness, metrics and the request log (core.health, core.metrics,
core.observability): what a load balancer, a Prometheus scraper and a log pipeline see, and
what they must never see (personal data, keys, tokens)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import threading
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from contacts.models import Contact
from core import health
from core.models import WorkerHeartbeat
from core.observability import logging_config
from tests.helpers import list_url
from tests.identity.conftest import Widget, make_jwt
from tests.transfers.conftest import upload
from transfers.imports.engine import import_run

pytestmark = pytest.mark.django_db


def fresh_heartbeat(age_seconds: float = 0) -> None:
    at = timezone.now() - timedelta(seconds=age_seconds)
    WorkerHeartbeat.objects.create(name="host:1", started_at=at, seen_at=at)


# --- /healthz and /readyz -------------------------------------------------------------------


def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_the_database_migrations_and_a_live_worker(client):
    fresh_heartbeat()
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "migrations": True,
        "worker": True,
    }


def test_readyz_is_503_without_a_worker_or_with_a_silent_one(client, settings):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"] == {"ok": False, "detail": "no worker has reported"}

    fresh_heartbeat(age_seconds=settings.READYZ_WORKER_MAX_AGE_SECONDS + 30)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"]["detail"].startswith("last heartbeat")

    settings.READYZ_REQUIRE_WORKER = False
    response = client.get("/readyz")
    assert response.status_code == 200
    assert "worker" not in response.json()["checks"]


def test_readyz_is_503_while_a_migration_is_not_applied(client, monkeypatch):
    fresh_heartbeat()
    monkeypatch.setattr(health, "_migrations_applied", False)
    monkeypatch.setattr(
        health.MigrationExecutor, "migration_plan", lambda self, targets: [("m", False)]
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == {"ok": False, "detail": "1 not applied"}


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_loop_reports_and_removes_itself_on_a_clean_stop(settings):
    settings.WORKER_HEARTBEAT_SECONDS = 1
    stop = threading.Event()
    loop = threading.Thread(target=health.heartbeat_forever, args=(stop,))
    loop.start()
    try:
        deadline = timezone.now() + timedelta(seconds=20)
        while not WorkerHeartbeat.objects.exists() and timezone.now() < deadline:
            stop.wait(0.05)
        (beat,) = WorkerHeartbeat.objects.all()
        assert beat.name == health.worker_name()
        stop.wait(1.5)  # a second beat moves seen_at on
        assert WorkerHeartbeat.objects.get().seen_at > beat.seen_at
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive()
    assert not WorkerHeartbeat.objects.exists()


# --- /metrics --------------------------------------------------------------------------------


def test_metrics_are_hidden_from_anyone_without_the_token_or_an_allowed_address(settings):
    settings.METRICS_TOKEN = "scrape-me-please"
    settings.METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    assert outsider.get("/metrics").status_code == 404
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404

    with_token = outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-please")
    assert with_token.status_code == 200
    assert with_token["Content-Type"].startswith("text/plain")
    from_network = Client(REMOTE_ADDR="10.1.2.3").get("/metrics")
    assert from_network.status_code == 200


def test_metrics_count_requests_by_view_identify_outcomes_and_read_the_queue(
    client, agent, settings
):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    widget = Widget(agent)
    assert widget.identify({"token": make_jwt(agent, user_id="m-1")}).status_code == 200
    assert widget.identify({"token": "not-a-jwt"}).status_code == 401
    client.get("/healthz")

    text = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()

    assert (
        'rapport_http_request_duration_seconds_count{method="GET",status="200",view="healthz"}'
        in (text)
    )
    assert 'rapport_identify_total{outcome="verified"}' in text
    assert 'rapport_identify_total{outcome="malformed_token"}' in text
    assert "rapport_task_queue_depth " in text
    assert "rapport_task_queue_oldest_age_seconds " in text
    assert "rapport_workers_alive " in text
    assert 'rapport_imports{status="running"}' in text


# --- The request log -------------------------------------------------------------------------


@pytest.fixture
def json_log(settings):
    """Every log line of the test, as the production JSON formatter writes it."""
    settings.REQUEST_LOG = True
    stream = io.StringIO()
    config = logging_config(fmt="json", level="DEBUG")
    logging.config.dictConfig(config)
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)
    yield stream
    logging.config.dictConfig(django_settings.LOGGING)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_one_json_line_per_request_with_its_id_view_status_timing_and_api_key(
    json_log, api, key, agent
):
    response = api.get("/api/v1/contacts/?q=someone@example.com", HTTP_X_REQUEST_ID="req-abc.123")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-abc.123"

    (line,) = [entry for entry in lines(json_log) if entry.get("event") == "request"]
    assert line["request_id"] == "req-abc.123"
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/contacts/"  # never the query string
    assert line["view"] == "api:contacts"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    assert line["db_queries"] >= 1
    assert line["db_ms"] >= 0
    assert line["api_key_id"] == key.api_key.pk
    assert line["agent_id"] == agent.pk
    assert "someone@example.com" not in json_log.getvalue()


def test_a_malformed_request_id_is_replaced_by_a_new_one(json_log, client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith: spaces")
    generated = response["X-Request-ID"]
    assert generated != "bad id\nwith: spaces"
    assert len(generated) == 32
    (line,) = lines(json_log)
    assert line["request_id"] == generated


def test_a_member_request_is_logged_with_the_user_id(json_log, admin_client, admin_user, agent):
    response = admin_client.get(list_url(agent))
    assert response.status_code == 200
    (line,) = [entry for entry in lines(json_log) if entry.get("event") == "request"]
    assert line["user_id"] == admin_user.pk
    assert line["agent_id"] == agent.pk


def test_no_personal_data_key_or_token_reaches_the_log_of_identify_import_and_erase(
    json_log, api, key, agent, settings
):
    """The whole life of a person through the product, logged at DEBUG in JSON: nothing
    that identifies them, and no secret, appears in a single line."""
    secrets_and_data = [
        "Grace Hopperton",
        "grace.hopperton@navy.example",
        "+14155550199",
        "Alan Turingford",
        "alan.turingford@example.org",
        "+442079460958",
        key.raw,
    ]
    widget = Widget(agent)
    token = make_jwt(
        agent,
        user_id="gh-1",
        name="Grace Hopperton",
        email="grace.hopperton@navy.example",
        phone="+14155550199",
    )
    secrets_and_data.append(token)
    assert widget.identify({"token": token}).status_code == 200
    bad = make_jwt(agent, secret="x" * 40, user_id="gh-1", email="grace.hopperton@navy.example")
    secrets_and_data.append(bad)
    assert widget.identify({"token": bad}).status_code == 401

    csv_text = (
        "external_id,name,email,phone\n"
        "at-1,Alan Turingford,alan.turingford@example.org,+442079460958\n"
        "bad,Broken Row,not-an-email,+1\n"
    )
    uploader = Client(HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    queued = uploader.post("/api/v1/imports/", {"file": upload(csv_text, "people.csv")})
    assert queued.status_code == 202, queued.content
    import_run(queued.json()["id"])
    alan = Contact.objects.get(agent=agent, external_id="at-1")
    grace = Contact.objects.get(agent=agent, external_id="gh-1")

    for person in (alan, grace):
        erased = api.post(f"/api/v1/contacts/{person.pk}/erase/")
        assert erased.status_code == 204

    log = json_log.getvalue()
    assert len([e for e in lines(json_log) if e.get("event") == "request"]) == 5
    for value in secrets_and_data:
        assert value not in log, f"{value[:12]}… reached the log"


def test_rows_written_by_an_import_are_counted_when_their_batch_commits(
    key, agent, django_capture_on_commit_callbacks
):
    sample = ("rapport_import_rows_total", {"outcome": "created"})
    before = REGISTRY.get_sample_value(*sample) or 0
    uploader = Client(HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    csv_text = "external_id,name\nm-1,One\nm-2,Two\nm-3,Three\n"
    queued = uploader.post("/api/v1/imports/", {"file": upload(csv_text, "people.csv")})
    assert queued.status_code == 202, queued.content
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        import_run(queued.json()["id"])
    assert (REGISTRY.get_sample_value(*sample) or 0) == before  # nothing before the commit
    for callback in callbacks:
        callback()
    assert REGISTRY.get_sample_value(*sample) == before + 3


def test_the_request_id_that_started_an_import_is_in_the_log_lines_of_its_task(
    json_log, key, agent, django_capture_on_commit_callbacks
):
    from django_tasks_db.models import DBTaskResult

    from transfers import tasks

    uploader = Client(HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    csv_text = "external_id,name\nr-1,One\n"
    with django_capture_on_commit_callbacks(execute=True):
        queued = uploader.post(
            "/api/v1/imports/",
            {"file": upload(csv_text, "people.csv")},
            HTTP_X_REQUEST_ID="upload-42",
        )
    assert queued.status_code == 202, queued.content
    job_id = queued.json()["id"]
    (row,) = DBTaskResult.objects.filter(task_path=tasks.run_import.module_path)
    assert row.args_kwargs == {"args": [job_id], "kwargs": {"request_id": "upload-42"}}

    assert tasks.run_import.call(job_id, request_id="upload-42") == "completed"

    task_lines = [line for line in lines(json_log) if line.get("import_id") == job_id]
    assert [line["event"] for line in task_lines] == ["import run started", "import run ended"]
    assert {line["request_id"] for line in task_lines} == {"upload-42"}
    assert task_lines[-1]["status"] == "completed"
