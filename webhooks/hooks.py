"""What webhooks plug into the apps below them (connected in WebhooksConfig.ready): the
change signals that fill the outbox, and the relay loop the task worker runs."""

from __future__ import annotations

from core import worker_loops
from webhooks import events, relay


def connect() -> None:
    events.connect()
    worker_loops.register("webhook-relay", relay.relay_forever)
