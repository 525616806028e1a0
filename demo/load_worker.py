"""The worker processes of the demo bulk load (demo.bulk_load).

They are started with "spawn": a fresh interpreter imports this module before Django is
set up, so nothing here may import models at the top; `load_slice` sets Django up and
then copies (demo.copying).
"""

from __future__ import annotations

import os

import psycopg


def load_slice(job: tuple[dict, dict]) -> dict[str, int]:
    """Worker process: generate one slice of the demo data and COPY it."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from demo import copying, data

    kwargs, params = job
    # The parent's connection parameters, not settings: under tests they name the test DB.
    with copying.connect(params) as conn, conn.transaction(), conn.cursor() as cursor:
        # The generated rows reference only rows created just before them, so the per-row
        # foreign-key checks can be skipped (needs a superuser; otherwise they run).
        try:
            with conn.transaction():
                cursor.execute("SET LOCAL session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            pass
        return copying.copy_batches(cursor, data.generate(**kwargs))
