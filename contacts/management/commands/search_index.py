"""Report on, or rebuild, the index behind contact search (contacts.search_index)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from contacts.search_index import (
    TRIGRAM_INDEX_NAME,
    fts_install,
    fts_present,
    fts_rebuild,
    fts_supported,
)


class Command(BaseCommand):
    help = (
        "Say whether contact search has its index, or rebuild it with --rebuild: on SQLite "
        "the FTS5 trigram table is refilled from the contacts (made first if missing, e.g. "
        "after restoring a file copied without it); on PostgreSQL the trigram index is "
        "rebuilt with REINDEX CONCURRENTLY."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="Rebuild the index.")

    def handle(self, *args, **options):
        started = time.monotonic()
        if connection.vendor == "postgresql":
            self._postgresql(rebuild=options["rebuild"])
        elif connection.vendor == "sqlite":
            self._sqlite(rebuild=options["rebuild"])
        else:
            raise CommandError(f"No search index on {connection.vendor}.")
        if options["rebuild"]:
            self.stdout.write(f"Rebuilt in {time.monotonic() - started:.1f} s.")

    def _postgresql(self, *, rebuild: bool) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [TRIGRAM_INDEX_NAME])
            present = cursor.fetchone()[0]
            if not present:
                raise CommandError(
                    f"The trigram index {TRIGRAM_INDEX_NAME} is missing: run manage.py migrate."
                )
            if rebuild:
                cursor.execute(f"REINDEX INDEX CONCURRENTLY {TRIGRAM_INDEX_NAME}")
        self.stdout.write(
            f"PostgreSQL: contact search uses the trigram index {TRIGRAM_INDEX_NAME}."
        )

    def _sqlite(self, *, rebuild: bool) -> None:
        import sqlite3

        version = sqlite3.sqlite_version
        if not fts_supported(connection):
            self.stdout.write(
                f"SQLite {version} lacks FTS5 or its trigram tokenizer (3.34 or later): "
                "contact search scans the contacts instead of reading an index."
            )
            return
        if rebuild and not fts_install(connection):
            fts_rebuild(connection)
        if not fts_present(connection):
            raise CommandError(
                "The search index is missing: run manage.py migrate or search_index --rebuild."
            )
        self.stdout.write(f"SQLite {version}: contact search uses the FTS5 trigram index.")
