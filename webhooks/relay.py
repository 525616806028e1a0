"""The worker's side of the outbox: find due deliveries, claim them, send them, record.

At least once, in order per key:
- A delivery is due when it is pending, its `next_attempt_at` has come, its endpoint is on,
  no worker holds it, and no earlier delivery of the same ordering key to the same endpoint
  is still pending (a contact's events reach an endpoint in the order they happened; a
  retrying one holds back the later ones of that contact only).
- A worker claims a delivery by setting `locked_until` (a lease), sends it, and records the
  outcome only while its lease is still the one stored. A worker killed mid-delivery
  records nothing: when its lease runs out the delivery is due again and sent again, with
  the same `webhook-id`, which is how the receiver recognises a repeat.
- A failed attempt that is worth retrying (timeout, connection error, 408, 429, 5xx) is
  tried again after RETRY_SCHEDULE (with jitter, and no sooner than a Retry-After asks);
  after the last one, or on any other answer, the delivery is failed. An endpoint that has
  failed without one success for WEBHOOK_DISABLE_AFTER_HOURS is switched off, with the
  reason shown in Settings.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from core import metrics
from webhooks import transport
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from webhooks.rendering import messages_render
from webhooks.secrets import endpoint_signing_secrets
from webhooks.signing import signed_headers

logger = logging.getLogger("webhooks")

# Seconds to wait after failed attempt 1, 2, …: about a day in all (like Svix's schedule).
RETRY_SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.2
BATCH = 50
SENDERS = 8
PRUNE_EVERY_SECONDS = 3600
_STATUS = WebhookDelivery.Status


def retry_delay(attempts: int, retry_after: float | None = None) -> float | None:
    """Seconds until the next try after `attempts` failed ones; None when none is left."""
    if attempts >= MAX_ATTEMPTS:
        return None
    delay = RETRY_SCHEDULE[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_SCHEDULE[-1]))
    return delay


def due(now, limit: int = BATCH) -> list[Any]:
    earlier = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        ordering_key=OuterRef("ordering_key"),
        status=_STATUS.PENDING,
        message_id__lt=OuterRef("message_id"),
    )
    return list(
        WebhookDelivery.objects.filter(
            status=_STATUS.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
        )
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .exclude(Exists(earlier))
        .order_by("message_id")
        .values_list("id", flat=True)[:limit]
    )


def claim_many(delivery_ids: list[Any], now) -> tuple[Any, int]:
    """Hold those of these deliveries no live worker holds, in one statement; the lease
    (the token to record with) and how many were taken."""
    lease = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    taken = (
        WebhookDelivery.objects.filter(pk__in=delivery_ids, status=_STATUS.PENDING)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=lease)
    )
    return lease, taken


def claim(delivery_id: Any, now) -> Any:
    """Hold one delivery for this worker; its lease or None."""
    lease, taken = claim_many([delivery_id], now)
    return lease if taken else None


def send(delivery: WebhookDelivery) -> transport.Attempt:
    """POST the delivery's message to its endpoint, signed for this attempt."""
    endpoint, message = delivery.endpoint, delivery.message
    if message.draft is not None:
        messages_render([message])  # deliver() renders a pass's messages beforehand
    headers = signed_headers(
        endpoint_signing_secrets(endpoint),
        msg_id=message.webhook_id,
        at=timezone.now(),
        body=message.body,
    )
    return transport.post(endpoint.url, message.body.encode(), headers)


def record(delivery_id: Any, lease: Any, attempt: transport.Attempt) -> WebhookDelivery | None:
    """Store one attempt's outcome, if this worker still holds the delivery."""
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return None
    recorded = record_many([(delivery, attempt)], lease)
    return recorded[0] if recorded else None


def record_many(
    outcomes: list[tuple[WebhookDelivery, transport.Attempt]], lease: Any
) -> list[WebhookDelivery]:
    """Store the outcomes of a pass in one transaction: the deliveries this worker still
    holds (a lease that ran out means another worker took one over), then each endpoint's
    failure record (cleared by a success, started by a failure, and the endpoint switched
    off when it has failed for WEBHOOK_DISABLE_AFTER_HOURS)."""
    now = timezone.now()
    with transaction.atomic():
        held = set(
            WebhookDelivery.objects.select_for_update()
            .filter(pk__in=[d.pk for d, _ in outcomes], status=_STATUS.PENDING, locked_until=lease)
            .values_list("pk", flat=True)
        )
        saved, succeeded, failed = [], {}, {}
        counted: Counter[str] = Counter()
        for delivery, attempt in outcomes:
            if delivery.pk not in held:
                continue
            delivery.attempts += 1
            delivery.last_attempt_at = now
            delivery.response_status = attempt.status
            delivery.response_body = attempt.body
            delivery.latency_ms = attempt.latency_ms
            delivery.error = attempt.error[:500]
            delivery.locked_until = None
            if attempt.succeeded:
                delivery.status = _STATUS.SUCCEEDED
                counted["succeeded"] += 1
                succeeded[delivery.endpoint_id] = delivery.endpoint
            else:
                delay = (
                    retry_delay(delivery.attempts, attempt.retry_after)
                    if attempt.retryable
                    else None
                )
                if delay is None:
                    delivery.status = _STATUS.FAILED
                    counted["failed"] += 1
                else:
                    delivery.next_attempt_at = now + timedelta(seconds=delay)
                    counted["retrying"] += 1
                failed[delivery.endpoint_id] = delivery
            saved.append(delivery)
        WebhookDelivery.objects.bulk_update(saved, _RECORDED, batch_size=200)
        _endpoints_note(succeeded, failed, now)
    for outcome, n in counted.items():
        metrics.WEBHOOK_DELIVERIES.labels(outcome).inc(n)
    return saved


_RECORDED = [
    "attempts",
    "last_attempt_at",
    "response_status",
    "response_body",
    "latency_ms",
    "error",
    "locked_until",
    "status",
    "next_attempt_at",
]


def _endpoints_note(
    succeeded: dict[Any, WebhookEndpoint], failed: dict[Any, WebhookDelivery], now
) -> None:
    cleared = [pk for pk, endpoint in succeeded.items() if endpoint.failing_since is not None]
    if cleared:
        WebhookEndpoint.objects.filter(pk__in=cleared).update(failing_since=None)
    failing = [pk for pk in failed if pk not in succeeded]
    if not failing:
        return
    WebhookEndpoint.objects.filter(pk__in=failing, failing_since__isnull=True).update(
        failing_since=now
    )
    hours = settings.WEBHOOK_DISABLE_AFTER_HOURS
    cutoff = now - timedelta(hours=hours)
    for pk in failing:
        last = failed[pk].error or "no answer"
        WebhookEndpoint.objects.filter(pk=pk, enabled=True, failing_since__lt=cutoff).update(
            enabled=False,
            disabled_at=now,
            disabled_reason=(
                f"Switched off on {now:%Y-%m-%d %H:%M} UTC: every delivery failed for "
                f"{hours:g} hours (last: {last})"
            )[:255],
            updated_at=now,
        )


_senders: ThreadPoolExecutor | None = None
_senders_lock = threading.Lock()


def _sender_pool() -> ThreadPoolExecutor:
    """The process's sending threads, made once (not one pool per pass)."""
    global _senders
    with _senders_lock:
        if _senders is None:
            _senders = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="webhook-send")
        return _senders


def deliver(delivery_ids: list[Any]) -> list[WebhookDelivery]:
    """Claim, send and record these deliveries (sent in parallel by up to SENDERS threads:
    no two of them share an ordering key, `due` makes sure). Returns the recorded ones."""
    if not delivery_ids:
        return []
    lease, taken = claim_many(delivery_ids, timezone.now())
    if not taken:
        return []
    claimed = list(
        WebhookDelivery.objects.filter(pk__in=delivery_ids, locked_until=lease)
        .select_related("endpoint", "message")
        .order_by("message_id")
    )
    if not claimed:
        return []
    messages_render([d.message for d in claimed])
    if len(claimed) == 1:
        attempts = [send(delivery) for delivery in claimed]
    else:
        attempts = list(_sender_pool().map(send, claimed))
    return record_many(list(zip(claimed, attempts, strict=True)), lease)


def deliver_due(*, limit: int = BATCH) -> int:
    """One pass: every delivery due now (up to `limit`); how many were attempted."""
    return len(deliver(due(timezone.now(), limit)))


def prune(now=None) -> int:
    """Forget finished deliveries (and messages left without any) past their retention."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    deleted, _ = WebhookDelivery.objects.filter(
        created_at__lt=cutoff, status__in=(_STATUS.SUCCEEDED, _STATUS.FAILED)
    ).delete()
    pending = WebhookDelivery.objects.filter(message_id=OuterRef("pk"))
    WebhookMessage.objects.filter(created_at__lt=cutoff).exclude(Exists(pending)).delete()
    return deleted


def more_due() -> bool:
    """Whether a delivery is due now: after a pass, those that waited behind what it sent."""
    return bool(due(timezone.now(), 1))


def relay_forever(stop: threading.Event) -> None:
    """The worker's delivery loop, on its own thread and database connection: a pass, then
    another at once if it was full or made a delivery due (the next message of a contact or
    an import waits for the one before it), else a wait of WEBHOOK_POLL_SECONDS, so a steady
    trickle of events is sent in passes of several, not one pass per event, and a chain of
    messages is not sent one per wait. Errors are logged and the loop goes on."""
    next_prune = 0.0
    while not stop.is_set():
        close_old_connections()
        again = False
        try:
            sent = deliver_due()
            again = sent >= BATCH or (sent > 0 and more_due())
            if time.monotonic() >= next_prune:
                prune()
                next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        except Exception:
            logger.exception("Delivering webhooks failed; trying again shortly")
        if not again:
            stop.wait(settings.WEBHOOK_POLL_SECONDS)
    connections.close_all()  # this thread's connections only
