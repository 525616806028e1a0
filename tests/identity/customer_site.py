"""A customer's web server for the widget's browser tests: pages on another origin than
Rapport's, embedding the widget's one script tag."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

POLL_MS = 300  # data-poll-ms: replies show within a fraction of a second in tests


class CustomerSite:
    """A customer's web server on its own origin (127.0.0.1, another port than Rapport's
    localhost): pages embedding the widget's one script tag, each with the headers, head
    and body it is given."""

    def __init__(self, live_server, agent_public_id: str) -> None:
        self.pages: dict[str, tuple[str, dict[str, str]]] = {}
        self.widget_src = f"{live_server.url}/static/widget/rapport.js"
        self.agent_public_id = agent_public_id
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body, headers = pages.get(urlsplit(self.path).path, ("", {}))
                data = body.encode()
                self.send_response(200 if data else 404)
                self.send_header("Content-Length", str(len(data)))
                for name, value in {"Content-Type": "text/html; charset=utf-8", **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(
        self,
        path: str,
        *,
        attrs: str = "",
        head: str = "",
        body: str = "",
        headers: dict | None = None,
        widget: bool = True,
        poll: bool = True,
    ) -> str:
        tag = ""
        if widget:
            extra = f' data-poll-ms="{POLL_MS}"' if poll else ""
            tag = (
                f'<script src="{self.widget_src}" '
                f'data-agent="{self.agent_public_id}"{extra} {attrs} async></script>'
            )
        html = (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Shop</title>{head}{tag}</head>"
            f"<body><main><h1>Customer site</h1><p>Our products.</p>"
            f'<button type="button" id="buy">Buy now</button>{body}</main></body></html>'
        )
        self.pages[path] = (html, headers or {})
        return f"{self.origin}{path}"

    def file(self, path: str, content: str, content_type: str) -> None:
        self.pages[path] = (content, {"Content-Type": content_type})

    def html(self, path: str, content: str) -> str:
        """A page written in full by the test; its address."""
        self.file(path, content, "text/html; charset=utf-8")
        return f"{self.origin}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
