"""`python -m bench.database`: make the benchmark's database ready to migrate.

On PostgreSQL (DATABASE_URL=postgres://…) the database is created when it does not exist
yet, so `make bench` works on a fresh server. Without DATABASE_URL the benchmark runs its
SQLite sections on its own file, var/bench.sqlite3 (never the development database), whose
folder is made here; an explicit sqlite:///path is used as given.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import psycopg
from psycopg import sql

SQLITE_FILE = Path(__file__).resolve().parent.parent / "var" / "bench.sqlite3"


def bench_database_url() -> str:
    """DATABASE_URL, or the benchmark's SQLite file when it is unset."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_FILE}"


def sqlite_path(url: str) -> Path | None:
    """The file a sqlite:/// URL names (as config/settings.py reads it), else None."""
    if not url.startswith("sqlite:"):
        return None
    return Path(dj_database_url.parse(url)["NAME"])


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
    url = bench_database_url()
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        print(
            f"Benchmark on SQLite in {path}: the table and import sections "
            "(DATABASE_URL=postgres://… measures every section on PostgreSQL)."
        )
        return 0
    if not url.startswith(("postgres://", "postgresql://")):
        print(
            "make bench measures PostgreSQL (DATABASE_URL=postgres://…) or, without "
            "DATABASE_URL, SQLite in var/bench.sqlite3.",
            file=sys.stderr,
        )
        return 2
    if ensure_database(url):
        print(f"Created the database {urlsplit(url).path.lstrip('/')}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
