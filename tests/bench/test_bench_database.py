"""`make bench` creates its database on a server that does not have it yet."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from django.db import connection

from bench.database import ensure_database


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark measures PostgreSQL")
def test_the_bench_database_is_created_once():
    db = connection.settings_dict
    name = f"rapport_bench_test_{uuid.uuid4().hex[:8]}"
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    try:
        assert ensure_database(url) is True
        assert ensure_database(url) is False
    finally:
        with psycopg.connect(
            host=db["HOST"] or "127.0.0.1",
            port=db["PORT"] or 5432,
            user=db["USER"],
            dbname="postgres",
            autocommit=True,
        ) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
