"""Run the benchmark: `make bench`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rapport_bench python -m bench [--contacts N]
    python -m bench                   # SQLite, var/bench.sqlite3: the table and import sections

Seeds or reuses an agent with N contacts, measures each section, prints one table and
writes it to docs/PERFORMANCE.md: between the bench markers for PostgreSQL (the production
and performance target, every section), between the bench-sqlite markers for SQLite (the
zero-configuration default: the table and import sections), when the file has them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

SECTIONS = ("table", "api", "import", "identify", "bulk", "busy", "webhooks", "load")
# What SQLite can be asked: the others measure PostgreSQL's pool, replicas and COPY paths.
SQLITE_SECTIONS = ("table", "import")
DEFAULT_CONTACTS = {"postgresql": 1_000_000, "sqlite": 100_000}
DOC = Path("docs/PERFORMANCE.md")
# The blocks of docs/PERFORMANCE.md a full run writes: PostgreSQL at its default size and at
# ten million contacts (side by side, so the growth shows), and SQLite.
TEN_MILLION = 10_000_000
MARKERS = {
    "postgresql": ("<!-- bench:start -->", "<!-- bench:end -->"),
    "postgresql-10m": ("<!-- bench-10m:start -->", "<!-- bench-10m:end -->"),
    "sqlite": ("<!-- bench-sqlite:start -->", "<!-- bench-sqlite:end -->"),
}
HEADINGS = {
    "postgresql": "## Benchmark (`make bench`)",
    "postgresql-10m": "## Benchmark at ten million contacts",
}
START, END = MARKERS["postgresql"]
COMMANDS = {
    "postgresql": "DATABASE_URL=postgres://postgres@127.0.0.1:5432/rapport_bench make bench",
    "sqlite": "make bench",
}


def report_block(vendor: str, contacts: int) -> str:
    """Which block of docs/PERFORMANCE.md a full run of `contacts` writes."""
    if vendor == "postgresql" and contacts >= TEN_MILLION:
        return "postgresql-10m"
    return vendor


def command_line(vendor: str, database_url: str, contacts: int) -> str:
    """The command that reproduces this run (a password in the URL left out)."""
    if vendor == "sqlite":
        command = COMMANDS["sqlite"]
    else:
        parts = urlsplit(database_url)
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        command = f"DATABASE_URL={parts.scheme}://{user}{host}{port}{parts.path} make bench"
    if contacts != DEFAULT_CONTACTS[vendor]:
        command += f' BENCH_ARGS="--contacts {contacts}"'
    return command


def _machine(vendor: str) -> str:
    cores = os.cpu_count()
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        mem_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown memory"
    from django.db import connection

    with connection.cursor() as cursor:
        if vendor == "sqlite":
            cursor.execute("SELECT sqlite_version()")
            database = f"SQLite {cursor.fetchone()[0]} (WAL, synchronous=NORMAL)"
        else:
            cursor.execute("SHOW server_version")
            pg = cursor.fetchone()[0]
            cursor.execute("SHOW shared_buffers")
            database = f"PostgreSQL {pg} (shared_buffers {cursor.fetchone()[0]})"
    return (
        f"{cores} cores, {memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {database}"
    )


def sections_for(vendor: str, asked: str | None) -> tuple[list[str], str | None]:
    """The sections to run, or an error message: the database's own by default; on SQLite
    a section that measures PostgreSQL is refused by name."""
    available = SQLITE_SECTIONS if vendor == "sqlite" else SECTIONS
    if not asked:
        return list(available), None
    wanted = [s.strip() for s in asked.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        return [], f"Unknown sections: {', '.join(unknown)}; choose from {', '.join(SECTIONS)}."
    refused = [s for s in wanted if s not in available]
    if refused:
        return [], (
            f"The {', '.join(refused)} "
            f"{'sections measure' if len(refused) > 1 else 'section measures'} "
            "PostgreSQL, the production target; on SQLite only "
            f"{' and '.join(SQLITE_SECTIONS)} run. For every section set DATABASE_URL, e.g.\n"
            f"  {COMMANDS['postgresql']}"
        )
    return wanted, None


def write_report(text: str, report: str, block: str) -> str | None:
    """`text` (docs/PERFORMANCE.md) with the report between the `block`'s markers (see
    report_block), or None when SQLite's markers are missing (its report is then printed
    only; a PostgreSQL block is appended under a heading of its own)."""
    start, end = MARKERS[block]
    written = f"{start}\n{report}{end}"
    if start in text and end in text:
        return text.split(start)[0] + written + text.split(end, 1)[1]
    if block == "sqlite":
        return None
    return text.rstrip() + f"\n\n{HEADINGS[block]}\n\n" + written + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--contacts",
        type=int,
        default=None,
        help="contacts in the bench agent (1,000,000 on PostgreSQL, 100,000 on SQLite)",
    )
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--sections",
        default=None,
        help=f"comma-separated, of {', '.join(SECTIONS)} "
        f"(default: all; on SQLite {', '.join(SQLITE_SECTIONS)})",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI: run every section on a small agent, fail only on errors, not on targets",
    )
    args = parser.parse_args()

    from bench.database import bench_database_url

    # Without DATABASE_URL the benchmark's own SQLite file, never the development database.
    os.environ["DATABASE_URL"] = bench_database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Production-like: no query logging, no debug toolbars.
    os.environ["DEBUG"] = "false"
    # The webhooks section's receiver listens on loopback (inherited by its processes).
    os.environ["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"
    import django

    django.setup()
    from django.db import connection

    vendor = connection.vendor
    if vendor not in MARKERS:
        print("make bench measures PostgreSQL or SQLite.", file=sys.stderr)
        return 2
    wanted, problem = sections_for(vendor, args.sections)
    if problem:
        print(problem, file=sys.stderr)
        return 2

    from bench.context import prepare
    from bench.harness import render_table

    started = time.monotonic()
    log = lambda line: print(line, flush=True)  # noqa: E731
    contacts = args.contacts if args.contacts is not None else DEFAULT_CONTACTS[vendor]
    ctx = prepare(contacts=contacts, log=log)
    log(f"Agent {ctx.agent.public_id}: {ctx.contacts:,} contacts")
    rows = []
    for name in wanted:
        log(f"== {name}")
        section = importlib.import_module(f"bench.{'imports' if name == 'import' else name}")
        rows += section.run(ctx, repeat=args.repeat, log=log)
    table_md = render_table(rows)
    elapsed = time.monotonic() - started
    report = (
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {elapsed / 60:.1f} min on "
        f"{_machine(vendor)}.\n"
        f"Command: `{command_line(vendor, os.environ['DATABASE_URL'], contacts)}` "
        f"({ctx.contacts:,} contacts in the agent, "
        f"{args.repeat} timed requests per line after warm-up).\n\n{table_md}\n"
    )
    print()
    print(report)
    everything = SQLITE_SECTIONS if vendor == "sqlite" else SECTIONS
    if not args.no_write and not args.smoke and set(wanted) == set(everything):
        text = DOC.read_text() if DOC.exists() else "# Performance\n"
        block = report_block(vendor, ctx.contacts)
        written = write_report(text, report, block)
        if written is None:
            start, end = MARKERS[block]
            print(f"{DOC} has no {start} … {end} block: the SQLite report is printed only.")
        else:
            DOC.write_text(written)
            print(f"Written to {DOC}.")
    if args.smoke:
        return 0
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
