"""The indexes behind contact search ("as you type" substring search over name, email,
external id and phone: the generated, lower-cased search_text column).

PostgreSQL: a trigram GIN index on search_text, led by agent_id (btree_gin) so one agent's
search never wades through another agent's matches. Shared by its migration and by the bulk
loader that drops and rebuilds indexes.

SQLite: an FTS5 table with the trigram tokenizer (SQLite 3.34 or later, built with FTS5,
as Python's sqlite3 is on every current platform) over the same column, kept in step by
triggers on the contacts table, so every write path (services, imports, merges, erasure,
raw SQL) updates it in the same transaction. It is an external-content table: it holds the
trigrams and reads the text from contacts_contact by rowid. A search asks it for the rowids
holding every trigram of the substring and keeps the usual LIKE on search_text, so results
are exactly those of the scan it replaces. Where the SQLite library lacks FTS5 or the
trigram tokenizer, the table is not made and search falls back to that scan
(`manage.py search_index` says which).
"""

from __future__ import annotations

import functools
import logging

logger = logging.getLogger(__name__)

TRIGRAM_INDEX_NAME = "contact_search_trgm"

TRIGRAM_INDEX_SQL = (
    f"CREATE INDEX {TRIGRAM_INDEX_NAME} ON contacts_contact "
    "USING gin (agent_id, search_text gin_trgm_ops) WHERE deleted_at IS NULL"
)

# A GIN index takes new entries into a pending list and merges the list into the index when
# it outgrows gin_pending_list_limit (4 MB by default): in whichever backend's write crosses
# the limit, for everyone's entries. While an import writes a thousand rows a second, that
# backend was often a widget's identify, which then merged the import's last few thousand
# rows before answering (449 pages: 0.4 s at a million contacts). Writers of many rows merge
# their own entries after each batch instead, so the list stays short and a request crossing
# the limit merges at most the requests' own few entries.
_MERGE_PENDING = (
    "SELECT gin_clean_pending_list(index.oid) FROM pg_class index"
    " WHERE index.oid = to_regclass(%s) AND pg_has_role(index.relowner, 'USAGE')"
)


def pending_entries_merge(connection) -> int:
    """PostgreSQL: merge the search index's pending entries into it now, in this process (a
    batch writer calls this after each batch). Returns the pages merged; 0 elsewhere, and
    when the index is absent (a bulk load rebuilding it) or owned by another role (merging
    needs the owner's rights, as VACUUM does)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_MERGE_PENDING, [TRIGRAM_INDEX_NAME])
        row = cursor.fetchone()
    return row[0] if row else 0


# --- SQLite -------------------------------------------------------------------------------

FTS_TABLE = "contact_search"
# The trigram tokenizer indexes substrings of three characters or more.
FTS_MIN_LENGTH = 3
FTS_TRIGGERS = ("contact_search_insert", "contact_search_delete", "contact_search_update")


# detail=none: the index keeps which rows hold a trigram, not where (a third cheaper to
# write, and smaller). A search asks for rows holding every trigram of the substring — a
# superset of the rows holding it, which the LIKE beside it then decides.
def fts_create_sql(table: str, content: str) -> str:
    """CREATE VIRTUAL TABLE for a search table over `content`'s search_text (the bench's
    insert floor makes a copy of it)."""
    return (
        f"CREATE VIRTUAL TABLE {table} USING fts5(search_text, content='{content}', "
        "content_rowid='rowid', tokenize='trigram', detail='none')"
    )


_FTS_CREATE = fts_create_sql(FTS_TABLE, "contacts_contact")
_FTS_ADD = "INSERT INTO contact_search(rowid, search_text) VALUES (new.rowid, new.search_text);"
# An external-content table forgets a row by being told exactly what it indexed.
_FTS_FORGET = (
    "INSERT INTO contact_search(contact_search, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text);"
)
_FTS_TRIGGERS_SQL = (
    f"CREATE TRIGGER contact_search_insert AFTER INSERT ON contacts_contact BEGIN {_FTS_ADD} END",
    "CREATE TRIGGER contact_search_delete AFTER DELETE ON contacts_contact "
    f"BEGIN {_FTS_FORGET} END",
    # search_text is generated from these four columns; other updates (last seen, attributes)
    # leave the index alone.
    "CREATE TRIGGER contact_search_update AFTER UPDATE OF name, email, external_id, phone "
    "ON contacts_contact WHEN old.search_text IS NOT new.search_text "
    f"BEGIN {_FTS_FORGET} {_FTS_ADD} END",
)
# The rowids of the contacts whose search_text holds a substring (see fts_query).
FTS_ROWIDS = "SELECT rowid FROM contact_search WHERE contact_search MATCH %s"
_FTS_REBUILD = "INSERT INTO contact_search(contact_search) VALUES ('rebuild')"


@functools.cache
def _library_has_fts5_trigram() -> bool:
    import sqlite3

    if sqlite3.sqlite_version_info < (3, 34, 0):
        return False
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("CREATE VIRTUAL TABLE probe USING fts5(t, tokenize='trigram')")
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()
    return True


def fts_supported(connection) -> bool:
    """Whether this SQLite library can hold the search index."""
    return connection.vendor == "sqlite" and _library_has_fts5_trigram()


def fts_query(needle: str) -> str | None:
    """The FTS5 query for the rows that may hold a substring: every trigram of it (each a
    quoted string, ignoring case), or None when it is too short for trigrams."""
    if len(needle) < FTS_MIN_LENGTH:
        return None
    trigrams = dict.fromkeys(needle[i : i + 3] for i in range(len(needle) - 2))
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in trigrams)


# Up to this many matches (in every agent) a search reads them from the index; a broader
# substring ("gmail", ".com") is left to the scan in the table's order, which finds a page
# of such common matches within a few rows (reading 80,000 matches and sorting them: 60 ms).
FTS_NARROW_LIMIT = 20_000
_FTS_PROBE = (
    "SELECT COUNT(*) FROM (SELECT rowid FROM contact_search WHERE contact_search MATCH %s LIMIT %s)"
)


def fts_narrows(connection, needle: str) -> bool:
    """Whether the search index should answer a search for `needle`: SQLite with the index,
    a needle long enough for trigrams, and at most FTS_NARROW_LIMIT matches."""
    query = fts_query(needle)
    if query is None or not fts_supported(connection):
        return False
    with connection.cursor() as cursor:
        cursor.execute(_FTS_PROBE, [query, FTS_NARROW_LIMIT + 1])
        return cursor.fetchone()[0] <= FTS_NARROW_LIMIT


def _fts_state(cursor) -> tuple[bool, bool]:
    """(table there, every trigger there)."""
    cursor.execute(
        "SELECT type, name FROM sqlite_master WHERE name = %s OR name IN (%s, %s, %s)",
        [FTS_TABLE, *FTS_TRIGGERS],
    )
    names = {name for _, name in cursor.fetchall()}
    return FTS_TABLE in names, all(t in names for t in FTS_TRIGGERS)


def fts_install(connection) -> bool:
    """Make the search table and its triggers where missing and fill the table; True when
    anything was (re)made. A missing trigger means writes went by unseen (a migration that
    remade the contacts table drops its triggers and renumbers its rows), so the table is
    refilled from the contacts whenever one was missing."""
    if not fts_supported(connection):
        return False
    if "contacts_contact" not in connection.introspection.table_names():
        return False
    with connection.cursor() as cursor:
        table, triggers = _fts_state(cursor)
        if table and triggers:
            return False
        if not table:
            cursor.execute(_FTS_CREATE)
        for name in FTS_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        for sql in _FTS_TRIGGERS_SQL:
            cursor.execute(sql)
        cursor.execute(_FTS_REBUILD)
    logger.info("Made the contact search index (%s)", FTS_TABLE)
    return True


def fts_rebuild(connection) -> None:
    """Refill the search table from the contacts (after a VACUUM or a restore)."""
    with connection.cursor() as cursor:
        cursor.execute(_FTS_REBUILD)


def fts_uninstall(connection) -> None:
    with connection.cursor() as cursor:
        for name in FTS_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        cursor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")


def fts_present(connection) -> bool:
    if connection.vendor != "sqlite":
        return False
    with connection.cursor() as cursor:
        table, triggers = _fts_state(cursor)
    return table and triggers
