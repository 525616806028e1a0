"""Reads of import jobs for the dashboard and the API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from transfers.csv_io import csv_stream, neutralize
from transfers.imports.readers import analyze
from transfers.models import ContactImport, ImportRowIssue
from workspaces.models import Agent

ISSUE_PAGE = 100


def imports_recent(*, agent: Agent, limit: int = 20) -> list[ContactImport]:
    """The agent's latest imports, newest first."""
    return list(
        ContactImport.objects.filter(agent=agent)
        .select_related("created_by")
        .order_by("-created_at")[:limit]
    )


def import_get(*, agent: Agent, import_id: Any) -> ContactImport:
    """One import of this agent (DoesNotExist for another agent's id)."""
    return ContactImport.objects.select_related("agent").get(agent=agent, pk=import_id)


def import_issues(
    *, job: ContactImport, kind: str | None = None, offset: int = 0, limit: int = ISSUE_PAGE
) -> list[ImportRowIssue]:
    qs = ImportRowIssue.objects.filter(job=job)
    if kind:
        qs = qs.filter(kind=kind)
    return list(qs.order_by("row_number", "id")[offset : offset + limit])


def import_column_samples(
    *, job: ContactImport, per_column: int = 3, rows: int = 20
) -> dict[str, list[str]]:
    """A few example values per column, read from the start of the stored file."""
    if not job.file:
        return {}
    try:
        with job.file.open("rb") as binary:
            analysis = analyze(
                binary, filename=job.filename, sample_rows=rows, file_format=job.file_format
            )
    except (OSError, ValueError):  # gone, or unreadable since: the page shows no examples
        return {}
    out: dict[str, list[str]] = {c: [] for c in job.columns}
    for row in analysis.sample:
        for column in job.columns:
            value = row.values.get(column)
            if value not in (None, "") and len(out[column]) < per_column:
                out[column].append(str(value)[:60])
    return out


def failed_rows_stream(job: ContactImport) -> Iterator[bytes]:
    """The rows that were not written, as the file had them, plus why (CSV or JSON Lines)."""
    issues = ImportRowIssue.objects.filter(job=job).order_by("row_number", "id")
    if job.file_format == "csv":
        width = len(job.columns)

        def rows() -> Iterator[list[Any]]:
            for issue in issues.iterator(chunk_size=1000):
                cells = list(issue.raw) if isinstance(issue.raw, list) else []
                cells = (cells + [""] * width)[: max(width, len(cells))]
                yield [*(neutralize(c) for c in cells), neutralize(issue.message)]

        # Column names are cells too: "=HYPERLINK(…)" as a header runs in a spreadsheet.
        header = [*(neutralize(c) for c in job.columns), "error"]
        yield from csv_stream(header, rows())
        return
    for issue in issues.iterator(chunk_size=1000):
        raw = issue.raw if isinstance(issue.raw, dict) else {"value": issue.raw}
        yield orjson.dumps({**raw, "error": issue.message}) + b"\n"


def failed_rows_filename(job: ContactImport) -> str:
    stem = job.filename.rsplit(".", 1)[0] or "import"
    extension = "csv" if job.file_format == "csv" else "jsonl"
    return f"{stem}-failed-rows.{extension}"
