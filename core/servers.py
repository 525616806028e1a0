"""The development server with a listen backlog that survives a burst.

Django's WSGIServer listens with a backlog of 10: 32 widget calls arriving at once (a
page with several embeds, a load test) overflow it and some connections are reset before
the server accepts them. The server threads wait for a pooled database connection
instead (DB_POOL_SIZE), so accepting them all is safe.
"""

from __future__ import annotations

from django.core.servers.basehttp import ThreadedWSGIServer, WSGIServer

LISTEN_BACKLOG = 128


class BurstTolerantWSGIServer(WSGIServer):
    request_queue_size = LISTEN_BACKLOG


class BurstTolerantThreadedWSGIServer(ThreadedWSGIServer):
    request_queue_size = LISTEN_BACKLOG
