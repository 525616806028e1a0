"""`python -m bench.database`: create the benchmark's PostgreSQL database when it does not
exist yet, so `make bench` works on a fresh server (it then migrates and seeds it)."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import psycopg
from psycopg import sql


def ensure_database(url: str) -> bool:
    """Create the database `url` names; False when it was already there."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or None,
        "dbname": "postgres",
    }
    with psycopg.connect(**server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def main() -> int:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print(
            "make bench measures PostgreSQL, the production target. Set DATABASE_URL, e.g.\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/rapport_bench make bench",
            file=sys.stderr,
        )
        return 2
    if ensure_database(url):
        print(f"Created the database {urlsplit(url).path.lstrip('/')}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
