"""The benchmark's webhooks section: its receiver counts what the relay sends, its identify
load makes events, its rows hold the targets of `make bench`, and on PostgreSQL both sides
run for real and leave the agents as they were (the timings are for `make bench`)."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import threading
from datetime import UTC, datetime

import jwt
import pytest
from django.conf import settings
from django.db import connection

from bench import identify
from bench import webhooks as section
from bench.context import BenchContext
from bench.harness import Timing
from bench.receiver import Receiver
from contacts.models import AuditEvent, Contact
from identity.models import VisitorSession
from tests.factories import ContactFactory
from transfers.models import ContactImport
from transfers.tasks import import_task_rows
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from webhooks.signing import new_secret, signed_headers
from workspaces.models import Agent
from workspaces.services import api_key_create

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the benchmark measures PostgreSQL"
)


def _post(port: int, body: str, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", "/hook", body=body.encode(), headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _message(msg_id: str, event_type: str, data: dict) -> str:
    return json.dumps({"id": msg_id, "type": event_type, "timestamp": "", "data": data})


def test_the_receiver_counts_requests_distinct_ids_contacts_and_bad_signatures():
    secret = new_secret()
    receiver = Receiver(secret)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    port = receiver.server_address[1]
    now = datetime.now(UTC)
    try:
        single = _message("msg_1", "contact.updated", {"contact": {"id": "c1"}})
        batch = _message("msg_2", "contact.created", {"contacts": [{"id": "a"}, {"id": "b"}]})
        for msg_id, body in (("msg_1", single), ("msg_2", batch), ("msg_1", single)):
            headers = signed_headers([secret], msg_id=msg_id, at=now, body=body)
            assert _post(port, body, headers) == 204
        forged = _message("msg_3", "contact.deleted", {"contact": {"id": "c3"}})
        headers = signed_headers([new_secret()], msg_id="msg_3", at=now, body=forged)
        assert _post(port, forged, headers) == 204

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/stats")
        stats = json.loads(conn.getresponse().read())
        conn.close()
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert stats == {
        "requests": 4,
        "distinct_ids": 3,
        "bad_signatures": 1,
        # A repeated id counts as a request, not as another message.
        "messages": {"contact.updated": 1, "contact.created": 1, "contact.deleted": 1},
        "contacts": {"contact.updated": 1, "contact.created": 2, "contact.deleted": 1},
    }
    assert receiver.url == f"http://127.0.0.1:{port}/hook"


def test_the_identify_mix_sends_new_users_changed_attributes_and_plain_returns():
    sender = section.EventfulSender(1, "/identify", "s" * 32, "run1", itertools.count())
    sender.rng = random.Random(7)
    kinds = {"new": 0, "changed": 0, "plain": 0}
    for _ in range(3000):
        body = json.loads(sender.body())
        claims = jwt.decode(body["token"], "s" * 32, algorithms=["HS256"])
        attributes = claims["contact_attributes"]
        if claims["user_id"].startswith("wh-run1-"):
            kinds["new"] += 1
            assert body["visitor_id"] == f"v-{claims['user_id']}"
        elif "visits" in attributes:
            kinds["changed"] += 1
        else:
            kinds["plain"] += 1
            # Exactly what the identify section sends for this user: no change.
            user = int(claims["user_id"].removeprefix("load-"))
            assert attributes == identify.pool_attributes(user)
    assert 100 <= kinds["new"] <= 200
    assert 100 <= kinds["changed"] <= 200
    assert kinds["plain"] == 3000 - kinds["new"] - kinds["changed"]


def _delivered(**changes) -> section.Delivered:
    values = {
        "written": 10,
        "by_type": {"contact.created": 9, "import.completed": 1},
        "succeeded": 10,
        "pending": 0,
        "failed": 0,
        "received": {
            "requests": 10,
            "distinct_ids": 10,
            "bad_signatures": 0,
            "messages": {"contact.created": 9, "import.completed": 1},
            "contacts": {"contact.created": 900, "import.completed": 1},
        },
        "lag": Timing([100.0, 200.0, 1500.0]),
        "drained_s": 0.4,
    }
    return section.Delivered(**{**values, **changes})


def _paced(p95: float, served: float = 300, errors: list[str] | None = None) -> section.Paced:
    return section.Paced(Timing([p95 / 2] * 18 + [p95] * 2), served, 6000, 6000, errors or [])


def test_the_identify_row_holds_the_identify_target_and_every_delivery():
    met = section.identify_row(_paced(30), _paced(45), _delivered())
    assert met.ok is True
    assert met.work.endswith("(5% new users, 5% changing an attribute; relay delivering)")
    assert met.target == "p95 ≤ 50 ms, every event delivered"
    assert "10 of 10 messages delivered" in met.measured
    assert "lag p50 0.20 s, p95 1.50 s, max 1.50 s, outbox empty 0.4 s after" in met.measured
    assert met.baseline.startswith("no endpoint: p50 15.0 ms, p95 30.0 ms")
    assert met.ratio == "1.50× p95 without"

    assert section.identify_row(_paced(30), _paced(51), _delivered()).ok is False
    assert section.identify_row(_paced(30), _paced(45, served=280), _delivered()).ok is False
    assert (
        section.identify_row(_paced(30), _paced(45, errors=["HTTP 500"]), _delivered()).ok is False
    )
    undelivered = _delivered(succeeded=9, pending=1, drained_s=None)
    row = section.identify_row(_paced(30), _paced(45), undelivered)
    assert row.ok is False
    assert "1 still pending" in row.measured
    forged = _delivered(received={**_delivered().received, "bad_signatures": 1})
    assert section.identify_row(_paced(30), _paced(45), forged).ok is False
    measured = section.identify_row(_paced(30), _paced(45), _delivered(relay_cpu_s=2.5))
    assert measured.measured.endswith("after the load, relay CPU 2.5 s")


def test_the_import_row_compares_the_best_of_each_side_and_wants_every_contact():
    row = section.import_row(900, 5000, [10.4, 10.0], [11.9, 12.5], _delivered(), done=True)
    assert row.ok is True
    assert row.ratio == "1.19× without"
    assert row.target == "≤ 1.2× without webhooks, every contact delivered"
    assert row.baseline == "no endpoint: 10.0 s (90 rows/s, best of 2)"
    assert row.measured.startswith("11.9 s (76 rows/s, best of 2); 900 contacts in 10 of 10")

    assert section.import_row(900, 5000, [10.0], [12.1], _delivered(), done=True).ok is False
    assert section.import_row(900, 5000, [10.0], [11.0], _delivered(), done=False).ok is False
    # A message lost on the way: fewer contacts arrived than were imported.
    assert section.import_row(901, 5000, [10.0], [11.0], _delivered(), done=True).ok is False
    single = section.import_row(900, 5000, [10.0], [11.0], _delivered(), done=True)
    assert single.baseline == "no endpoint: 10.0 s (90 rows/s)"


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_import_side_delivers_every_contact_and_cleans_up(
    agent, admin_user, monkeypatch, tmp_path
):
    monkeypatch.setattr(section, "IMPORT_FILE", tmp_path / "bench-webhooks-import.csv")
    monkeypatch.setattr(section, "IMPORT_ROUNDS", 1)
    ContactFactory.create_batch(6, agent=agent)
    ctx = BenchContext(
        agent=agent,
        user=admin_user,
        api_key=api_key_create(agent=agent, name="bench").raw,
        contacts=6,
    )
    lines: list[str] = []
    (row,) = section.import_rows(ctx, lines.append)
    assert row.work.startswith("import 6-row CSV into an agent holding 6, webhook endpoint")
    # One batch message carrying the six new contacts, then the import's summary.
    assert "6 contacts in 2 of 2 messages delivered (1 contact.created, 1 import.completed)" in (
        row.measured
    )
    assert row.baseline.startswith("no endpoint: ")
    assert any("'bad_signatures': 0" in line for line in lines)
    # The agent is as it was: its own contacts, no endpoint, outbox, import or its task.
    assert Contact.objects.filter(agent=agent).count() == 6
    assert not AuditEvent.objects.filter(agent=agent, channel="import").exists()
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert not WebhookMessage.objects.exists()
    assert not ContactImport.objects.exists()
    assert not import_task_rows().exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_identify_side_serves_the_mix_and_delivers_its_events(monkeypatch):
    monkeypatch.setattr(identify, "DURATION_S", 1.0)
    monkeypatch.setattr(identify, "WARM_UP_S", 0.5)
    monkeypatch.setattr(identify, "CLIENT_THREADS", 2)
    # A small pool that the warm-up has seen, and more events than the benchmark's mix, so
    # that one second surely brings both kinds.
    monkeypatch.setattr(identify, "USER_POOL", 20)
    monkeypatch.setattr(section, "NEW_SHARE", 0.2)
    monkeypatch.setattr(section, "CHANGE_SHARE", 0.3)
    lines: list[str] = []
    (row,) = section.identify_rows(lines.append)
    assert row.work.startswith("verified identify at 300 req/s with a webhook endpoint")
    assert "0 errors" in row.measured
    written = int(row.measured.split(" of ")[1].split(" messages")[0].replace(",", ""))
    assert written > 0
    assert f"{written:,} of {written:,} messages delivered (" in row.measured
    assert "contact.created" in row.measured
    assert "contact.updated" in row.measured
    # The new users' contacts and sessions, the audit entries and the outbox are gone; the
    # returning users of the pool stay for the next run, as the identify section keeps them.
    agent = Agent.objects.get(workspace__name="Bench", name="Identify load")
    assert not Contact.objects.filter(agent=agent, external_id__startswith="wh-").exists()
    assert not VisitorSession.objects.filter(visitor_id__startswith="v-wh-").exists()
    assert not AuditEvent.objects.filter(agent=agent).exists()
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookMessage.objects.exists()
    assert Contact.objects.filter(agent=agent, external_id__startswith="load-").exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_relay_runs_at_the_workers_lowered_priority(agent):
    """In production the relay is a thread of `manage.py worker`, which lowers its CPU
    priority so that the web server's requests get the cores first; the benchmark's relay
    process does the same, or it would compete with identify as production's does not."""
    if os.getpriority(os.PRIO_PROCESS, 0) >= 19:
        pytest.skip("these tests already run at the lowest CPU priority: nothing to lower")
    with section.Subscribed(agent) as hooks:
        relay = os.getpriority(os.PRIO_PROCESS, hooks.relay.pid)
        receiver = os.getpriority(os.PRIO_PROCESS, hooks.receiver.pid)
    assert relay == min(receiver + settings.WORKER_NICE, 19)
    assert relay > receiver
