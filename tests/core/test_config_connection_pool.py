"""On PostgreSQL a server process borrows database connections from a bounded pool: a burst
of concurrent widget calls waits for a free connection instead of opening one per thread
until the database refuses everyone ("too many clients")."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _count_connections(dbname: str, own_pid: int, conninfo: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as probe:
        (count,) = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> %s"
            " AND pid <> pg_backend_pid()",
            [dbname, own_pid],
        ).fetchone()
    return count


@pytest.mark.skipif(not settings.IS_POSTGRES, reason="connection pooling is PostgreSQL's")
def test_a_burst_of_32_clients_never_opens_more_connections_than_the_pool(live_server, agent):
    pool = settings.DATABASES["default"]["OPTIONS"]["pool"]
    db = connection.settings_dict
    conninfo = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']}"
    own_pid = connection.cursor().connection.info.backend_pid
    url = f"{live_server.url}/widget/v1/{agent.public_id}/identify"
    settings.WIDGET_RATE_LIMIT_PER_ADDRESS = "1000000/minute"

    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _count_connections(db["NAME"], own_pid, conninfo))
            time.sleep(0.02)

    def identify(n: int) -> int:
        body = json.dumps({"visitor_id": str(uuid.uuid4()), "email": f"v{n}@example.com"})
        request = urllib.request.Request(  # noqa: S310 - the local test server
            url, body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=32) as clients:
            statuses = list(clients.map(identify, range(400)))
    finally:
        done.set()
        watcher.join()
    assert statuses.count(200) == 400
    assert 0 < peak <= pool["max_size"]
