"""The outbox survives a real worker process killed (SIGKILL) mid-delivery: the delivery is
made after the restart, and the receiver, deduplicating on webhook-id, handles it once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from contacts.services import contact_create
from core.actors import Actor
from tests.webhooks.receiver import Receiver, Reply
from webhooks import services
from webhooks.models import WebhookDelivery

ROOT = Path(__file__).resolve().parents[2]
LEASE = 10


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
    return f"postgres://{user}{password}@{host}/{db['NAME']}"


def start_worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "WEBHOOK_LEASE_SECONDS": str(LEASE),
        "WEBHOOK_POLL_SECONDS": "0.1",
        "WEBHOOK_TIMEOUT_SECONDS": "30",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--no-reload", "--no-startup-delay"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_delivers_after_restart_exactly_once(agent):
    with Receiver() as receiver:
        # The first request is held (the receiver is slow), so the kill lands mid-delivery.
        receiver.then(Reply(204, delay=LEASE + 5))
        services.endpoint_create(agent=agent, url=receiver.url, events=["contact.created"])
        contact_create(agent=agent, actor=Actor.importer("test"), data={"name": "Ada"})

        worker = start_worker()
        try:
            wait_for(lambda: len(receiver.requests) == 1, 60, "the first attempt")
        finally:
            worker.kill()  # SIGKILL: nothing runs, nothing is recorded
            worker.wait(10)
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == WebhookDelivery.Status.PENDING
        assert delivery.attempts == 0
        assert delivery.locked_until is not None  # held by the dead worker's lease

        worker = start_worker()
        try:
            wait_for(
                lambda: WebhookDelivery.objects.get().status == WebhookDelivery.Status.SUCCEEDED,
                LEASE + 60,
                "the delivery after the restart",
            )
        finally:
            worker.terminate()
            worker.wait(20)
        ids = [r.headers["webhook-id"] for r in receiver.requests]
        assert len(ids) >= 2  # the dead worker's request, and the new one's
        assert len(set(ids)) == 1
        assert list(receiver.handled) == [ids[0]]  # handled once, from the receiver's view
