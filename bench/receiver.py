"""The benchmark's webhook receiver: a threaded HTTP server on loopback that answers every
POST with 204 and counts what it got.

It counts requests, distinct `webhook-id` values (a repeat of an id is a redelivery),
signatures that do not verify against the endpoint's secret, and per event type the
messages and the contacts they carry (`data.contacts` of a batch, else one). `GET /stats`
answers those counts as JSON, so the benchmark can watch the outbox drain from outside.

The webhooks section runs it as its own process (`python -m bench.receiver PORT`, the
endpoint's secret in BENCH_RECEIVER_SECRET; it serves until SIGTERM), so its parsing never
competes with the measured work for the benchmark's interpreter; tests run `Receiver` on a
thread. It imports nothing from Django.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


class Tally:
    """What the receiver has seen so far (thread-safe)."""

    def __init__(self, secret: str = "") -> None:
        self.webhook = Webhook(secret) if secret else None
        self.lock = threading.Lock()
        self.requests = 0
        self.ids: set[str] = set()
        self.bad_signatures = 0
        self.messages: Counter[str] = Counter()
        self.contacts: Counter[str] = Counter()

    def record(self, headers: dict[str, str], body: bytes) -> None:
        msg_id = headers.get("webhook-id", "")
        payload: Any = None
        signed = True
        if self.webhook is not None:
            try:
                payload = self.webhook.verify(body, headers)
            except WebhookVerificationError:
                signed = False
        if payload is None:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {}
        event_type = str(payload.get("type", "")) if isinstance(payload, dict) else ""
        data = payload.get("data") if isinstance(payload, dict) else None
        batch = data.get("contacts") if isinstance(data, dict) else None
        carried = len(batch) if isinstance(batch, list) else 1
        with self.lock:
            self.requests += 1
            self.bad_signatures += not signed
            first = msg_id not in self.ids
            self.ids.add(msg_id)
            if first:
                self.messages[event_type] += 1
                self.contacts[event_type] += carried

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "distinct_ids": len(self.ids),
                "bad_signatures": self.bad_signatures,
                "messages": dict(self.messages),
                "contacts": dict(self.contacts),
            }


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.server.tally.record(headers, body)
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:
        if self.path != "/stats":
            self.send_error(404)
            return
        body = json.dumps(self.server.tally.snapshot()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: hundreds of requests a second would bury the benchmark's own lines."""


class Receiver(ThreadingHTTPServer):
    """The server; `tally` holds the counts, `url` is where to point an endpoint."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, secret: str = "", port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.tally = Tally(secret)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


def main() -> int:
    receiver = Receiver(os.environ.get("BENCH_RECEIVER_SECRET", ""), port=int(sys.argv[1]))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=receiver.shutdown).start())
    receiver.serve_forever(poll_interval=0.2)
    receiver.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
