"""A webhook receiver on 127.0.0.1 for tests: it answers from a script (status, headers,
body, delay), keeps every request it got, and handles each webhook-id once, the way a
receiver should (exactly once from its own view)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.handled: dict[str, Any] = {}  # webhook-id -> payload, first time only
        self.script: list[Reply] = []
        self.default = Reply()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    receiver.requests.append(got)
                    reply = receiver.script.pop(0) if receiver.script else receiver.default
                if reply.delay:
                    time.sleep(reply.delay)
                if 200 <= reply.status < 300:
                    with receiver.lock:
                        receiver.handled.setdefault(got.headers["webhook-id"], got.json)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def then(self, *replies: Reply) -> Receiver:
        self.script.extend(replies)
        return self

    def types(self) -> list[str]:
        return [r.json["type"] for r in self.requests]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
