"""Read CSV, JSON (an array of objects) and JSONL files as a stream of rows, never whole.

Pure helpers with no database access. A problem with the file itself (not text, not UTF-8,
broken quoting, invalid JSON) is a `FileFormatError` whose message says where and what to do;
a problem with one row (too many cells, not an object) travels with that row.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import ijson
import orjson

from transfers.csv_io import unneutral

FORMATS = ("csv", "json", "jsonl")
FORMAT_LABELS = {"csv": "CSV", "json": "JSON", "jsonl": "JSON Lines"}
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# A cell larger than this is almost always a quote that was never closed.
MAX_CELL_BYTES = 128 * 1024
SNIFF_BYTES = 64 * 1024
# Exports put an apostrophe before cells starting with these (spreadsheet formula guard).
# Nested objects of a JSON row that are flattened into "attributes.<key>" columns.
NESTED = ("attributes",)
# How deep a JSON row may nest, the row object being level 1. A contact needs three levels
# (the row, a list or the attributes object, a Stripe account in the accounts list); deeper
# items are refused while they are read, before they are built: ijson's path-keeping parser
# holds a prefix string per open level, so a file of N brackets costs memory in N².
MAX_JSON_DEPTH = 5

csv.field_size_limit(MAX_CELL_BYTES)


class FileFormatError(ValueError):
    """The file cannot be read as the format it claims; nothing of it is imported."""


@dataclass
class SourceRow:
    number: int  # CSV: the spreadsheet row (the header is row 1); JSON: item; JSONL: line
    values: dict[str, Any]
    raw: Any  # CSV: the cells as read; JSON: the object
    error: str = ""


@dataclass
class Analysis:
    file_format: str
    delimiter: str
    columns: list[str]
    sample: list[SourceRow] = field(default_factory=list)


def detect_format(filename: str, head: bytes) -> str:
    """csv, json or jsonl from the file name, else from the first character."""
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        return "json"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    text = head.lstrip(codecs.BOM_UTF8).lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "jsonl"
    return "csv"


def check_text(head: bytes) -> None:
    """Refuse binary files and text in another encoding than UTF-8, with what to do instead."""
    if not head.strip():
        raise FileFormatError("The file is empty.")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileFormatError(
            "The file is UTF-16 text. Save it as UTF-8 (in Excel: “CSV UTF-8”) and upload it again."
        )
    if b"\x00" in head:
        raise FileFormatError(
            "This is a binary file, not CSV or JSON text (for a spreadsheet, export it as CSV)."
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc, offset=0) from None


def _not_utf8(exc: UnicodeDecodeError, *, offset: int, row: int = 0) -> FileFormatError:
    byte = exc.object[exc.start : exc.start + 1].hex()
    where = f"row {row}" if row else f"position {offset + exc.start:,}"
    return FileFormatError(
        f"The file is not UTF-8 text (byte 0x{byte} at {where}). "
        "Save it as UTF-8 (in Excel: “CSV UTF-8”) and upload it again."
    )


def sniff_delimiter(head: bytes) -> str:
    """The delimiter of a CSV file from its first lines (comma when unsure)."""
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
    cut = text.rfind("\n")
    sample = text[: cut if cut > 0 else len(text)]
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        first = sample.split("\n", 1)[0]
        counts = {d: first.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _text_stream(binary: IO[bytes]) -> IO[str]:
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")


def _csv_rows(binary: IO[bytes], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    text = _text_stream(binary)
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    record = 0
    try:
        for cells in reader:
            record += 1
            yield record, cells
    except csv.Error as exc:
        raise FileFormatError(_csv_message(record + 1, str(exc))) from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc, offset=0, row=record + 1) from None
    finally:
        # Leave the caller's file open (a TextIOWrapper closes it when it goes away); it may
        # be closed already when an abandoned reader is collected late.
        with contextlib.suppress(ValueError):
            text.detach()


def _csv_message(row: int, reason: str) -> str:
    if "unexpected end of data" in reason:
        return (
            f"Row {row}: a quoted cell is never closed, so the rest of the file would be read "
            'as one cell. Check the quotes (") in that row.'
        )
    if "field larger than field limit" in reason:
        return (
            f"Row {row}: a cell is larger than {MAX_CELL_BYTES // 1024} KB, usually a quote "
            'that is never closed. Check the quotes (") in that row.'
        )
    if "line contains NUL" in reason or "NUL" in reason:
        return f"Row {row} contains a NUL byte: this is not a text file."
    return f'Row {row} is not valid CSV: {reason}. Check the quotes (") in that row.'


def _csv_header(cells: list[str]) -> list[str]:
    if not any(c.strip() for c in cells):
        raise FileFormatError("The first row must name the columns, and it is empty.")
    columns: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells, start=1):
        name = unneutral(" ".join(cell.split())) or f"(column {index})"
        folded = name.casefold()
        if folded in seen:
            raise FileFormatError(
                f"The column “{name}” appears twice in the first row (columns {seen[folded]} "
                f"and {index}); rename one of them."
            )
        seen[folded] = index
        columns.append(name)
    return columns


def read_csv(binary: IO[bytes], *, delimiter: str) -> tuple[list[str], Iterator[SourceRow]]:
    """The header and a stream of data rows; blank lines are skipped."""
    records = _csv_rows(binary, delimiter)
    try:
        _number, header = next(records)
    except StopIteration:
        raise FileFormatError("The file is empty.") from None
    columns = _csv_header(header)

    def rows() -> Iterator[SourceRow]:
        width = len(columns)
        for number, cells in records:
            if not cells or not any(c.strip() for c in cells):
                continue
            error = ""
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                error = (
                    f"The row has {len(cells)} cells but the first row names {width} columns; "
                    "a cell probably contains an unquoted delimiter."
                )
            padded = [unneutral(c) for c in cells] + [""] * (width - len(cells))
            yield SourceRow(number, dict(zip(columns, padded, strict=False)), cells, error)

    return columns, rows()


def _flatten(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in NESTED and isinstance(value, dict):
            for sub, sub_value in value.items():
                out[f"{key}.{sub}"] = sub_value
        else:
            out[str(key)] = value
    return out


def _object_row(number: int, item: Any, what: str) -> SourceRow:
    if not isinstance(item, dict):
        return SourceRow(number, {}, item, f"{what} {number} is not an object of contact fields.")
    return SourceRow(number, _flatten(item), item)


def read_json(binary: IO[bytes]) -> Iterator[SourceRow]:
    """The items of a top-level JSON array, parsed incrementally."""
    head = binary.read(SNIFF_BYTES)
    stripped = head.lstrip(codecs.BOM_UTF8).lstrip()
    if not stripped.startswith(b"["):
        raise FileFormatError(
            'A JSON import is an array of contact objects, like [{"email": …}, …]; '
            "for one object per line, name the file .jsonl."
        )
    binary.seek(0)
    if head.startswith(codecs.BOM_UTF8):
        binary.read(len(codecs.BOM_UTF8))
    number = 0
    try:
        for item in _array_items(binary):
            number += 1
            yield _object_row(number, item, "Item")
    except ijson.JSONError as exc:
        raise FileFormatError(
            f"The file is not valid JSON after item {number:,}: {_ijson_reason(exc)}."
        ) from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc, offset=0) from None


def _too_deep(what: str, number: int) -> FileFormatError:
    return FileFormatError(
        f"{what} {number:,} nests lists or objects more than {MAX_JSON_DEPTH} levels deep, "
        "which no contact needs (a contact is an object of values, lists of values and a list "
        "of Stripe accounts). Flatten it and upload the file again."
    )


def _array_items(binary: IO[bytes]) -> Iterator[Any]:
    """The values of a top-level JSON array, built from ijson's flat events (no paths kept),
    with each item's nesting bounded by MAX_JSON_DEPTH as it is read."""
    stack: list[Any] = []  # the open containers; stack[0] is the top-level array (kept empty)
    top: Any = None
    key = ""
    limit = MAX_JSON_DEPTH + 1
    number = 1  # the item being read
    for event, value in ijson.basic_parse(binary, use_float=True):
        if event == "map_key":
            key = value
        elif value is not None or event == "null":
            if len(stack) == 1:
                number += 1
                yield value
            elif type(top) is list:
                top.append(value)
            else:
                top[key] = value
        elif event == "start_map" or event == "start_array":
            container: Any = {} if event == "start_map" else []
            if len(stack) > 1:
                if type(top) is list:
                    top.append(container)
                else:
                    top[key] = container
            stack.append(container)
            top = container
            if len(stack) > limit:
                raise _too_deep("Item", number)
        else:  # end_map, end_array
            done = stack.pop()
            top = stack[-1] if stack else None
            if len(stack) == 1:
                number += 1
                yield done


def _line_too_deep(line: bytes) -> bool:
    """Whether a JSON Lines line nests deeper than MAX_JSON_DEPTH, found without building it."""
    if line.count(b"[") + line.count(b"{") <= MAX_JSON_DEPTH:
        return False  # the usual row: too few brackets to nest that deep
    depth = 0
    try:
        for event, _value in ijson.basic_parse(io.BytesIO(line)):
            if event == "start_map" or event == "start_array":
                depth += 1
                if depth > MAX_JSON_DEPTH:
                    return True
            elif event == "end_map" or event == "end_array":
                depth -= 1
    except ijson.JSONError:
        return False  # not JSON: orjson says where
    return False


def _ijson_reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def read_jsonl(binary: IO[bytes]) -> Iterator[SourceRow]:
    """One JSON object per line; blank lines are skipped."""
    for number, line in enumerate(binary, start=1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        if not line.strip():
            continue
        if _line_too_deep(line):
            raise _too_deep("Line", number)
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise FileFormatError(f"Line {number:,} is not valid JSON: {exc}.") from None
        yield _object_row(number, item, "Line")


def open_rows(
    binary: IO[bytes], *, file_format: str, delimiter: str = ","
) -> tuple[list[str] | None, Iterator[SourceRow]]:
    """(CSV header or None, rows) for a file opened in binary mode at its start."""
    if file_format == "csv":
        return read_csv(binary, delimiter=delimiter or ",")
    if file_format == "json":
        return None, read_json(binary)
    if file_format == "jsonl":
        return None, read_jsonl(binary)
    raise FileFormatError(f"Unknown format {file_format!r}; use CSV, JSON or JSON Lines.")


def analyze(
    binary: IO[bytes], *, filename: str, sample_rows: int = 1000, file_format: str = ""
) -> Analysis:
    """Format, delimiter, columns and the first rows of a file, for the mapping step."""
    head = binary.read(SNIFF_BYTES)
    check_text(head)
    file_format = file_format or detect_format(filename, head)
    delimiter = sniff_delimiter(head) if file_format == "csv" else ""
    binary.seek(0)
    header, rows = open_rows(binary, file_format=file_format, delimiter=delimiter)
    sample: list[SourceRow] = []
    columns: dict[str, None] = dict.fromkeys(header or [])
    for row in rows:
        sample.append(row)
        if header is None:
            columns.update(dict.fromkeys(row.values))
        if len(sample) >= sample_rows:
            break
    if not columns:
        raise FileFormatError("The file has no columns to import (no objects with fields).")
    return Analysis(file_format, delimiter, list(columns), sample)
