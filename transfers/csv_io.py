"""CSV in both directions: the formula guard (and its reverse) and streaming CSV bytes.

Exports and the failed-rows download write through `csv_stream`; every cell a spreadsheet
would run as a formula goes out through `neutralize`, and the importer reads it back with
`unneutral`, so a file exported and imported again is unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> Any:
    """A cell a spreadsheet would run as a formula, made inert with a leading apostrophe.

    Apostrophes already in front of a formula sign get one more, which `unneutral` takes
    off again on import: a stored "'=x" comes back as "'=x"."""
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_START):
        return "'" + value
    return value


def unneutral(cell: str) -> str:
    """Undo the export's formula guard: '=SUM(…) and '+1415… are read as written."""
    if cell[:1] == "'" and cell.lstrip("'").startswith(FORMULA_START):
        return cell[1:]
    return cell


def csv_stream(header: list[str], rows: Iterable[list[Any]]) -> Iterator[bytes]:
    """CSV bytes of `header` then `rows`, about 500 rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
