"""Which statements PostgreSQL keeps prepared: the hand-written ones on the hot paths only.

A prepared statement is planned once per connection. That is what identify's statements
want (an index lookup on the contacts table plans in 0.2–1 ms and runs in 0.05 ms). It is
not what the dashboard's and the API's ORM queries want: after a few runs PostgreSQL may
switch a prepared statement to a generic plan, made without the values, and a search or an
attribute filter whose best plan depends on how many contacts match got one that read the
whole agent (a 4-letter search on ten million contacts: 1.5 s instead of 8 ms).

So a statement is prepared (after DB_PREPARE_THRESHOLD runs on a connection) only when its
text starts with `MARK`, which `prepared()` adds; every other statement is planned for its
own values every time. The mark is a comment: PostgreSQL ignores it, and it shows in
pg_stat_statements and pg_prepared_statements.
"""

from __future__ import annotations

from functools import cache
from typing import Any

MARK = "/* prepared */ "


def prepared(sql: str) -> str:
    """`sql`, to be kept prepared on each connection that runs it often."""
    return sql if sql.startswith(MARK) else MARK + sql


@cache
def _cursor_class(base: type) -> type:
    class PreparesMarkedOnly(base):  # type: ignore[misc, valid-type]
        prepares_marked_only = True

        def execute(self, query: Any, params: Any = None, *, prepare: Any = None, **kwargs):
            if prepare is None and not (isinstance(query, str) and query.startswith(MARK)):
                prepare = False
            return super().execute(query, params, prepare=prepare, **kwargs)

    return PreparesMarkedOnly


def prepare_marked_only(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created` receiver: this connection's cursors prepare marked statements
    only (PostgreSQL; psycopg's `prepare=False` for the others)."""
    if connection.vendor != "postgresql":
        return
    raw = connection.connection
    if not getattr(raw.cursor_factory, "prepares_marked_only", False):
        raw.cursor_factory = _cursor_class(raw.cursor_factory)
