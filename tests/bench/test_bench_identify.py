"""The identify section's warm-up meets every visitor of the pool once (the timings are for
`make bench`)."""

from __future__ import annotations

import json
import threading

import jwt

from bench import identify


class RecordingSender(identify._Sender):
    """Signs as the section's sender does; records each body instead of sending it."""

    sent: list[tuple[str, str]] = []
    lock = threading.Lock()

    def send(self, body, since, out, errors):
        payload = json.loads(body)
        claims = jwt.decode(payload["token"], self.secret, algorithms=["HS256"])
        with self.lock:
            self.sent.append((claims["user_id"], payload["visitor_id"]))


def test_the_warm_up_identifies_every_user_from_each_device_once(monkeypatch):
    monkeypatch.setattr(identify, "USER_POOL", 5)
    monkeypatch.setattr(identify, "DEVICES", 3)
    RecordingSender.sent = []
    errors = identify.warm_every_visitor(lambda: RecordingSender(1, "/", "s" * 32))
    assert errors == []
    assert sorted(RecordingSender.sent) == sorted(
        (f"load-{user}", f"v-{user}-{device}") for user in range(5) for device in range(3)
    )
