"""What webhooks plug into the apps below them (connected in WebhooksConfig.ready): the
change signals that fill the outbox, and the relay loop the task worker runs."""

from __future__ import annotations

from contacts.signals import contact_erasing
from core import worker_loops
from webhooks import erasure, events, relay


def connect() -> None:
    events.connect()
    contact_erasing.connect(erasure.outbox_forget, dispatch_uid="webhooks.erasure")
    worker_loops.register("webhook-relay", relay.relay_forever)
