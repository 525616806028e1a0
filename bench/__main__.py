"""Run the benchmark: `make bench` (PostgreSQL only).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rapport_bench python -m bench [--contacts N]

Seeds or reuses an agent with N contacts, measures each section, prints one table and
writes it to docs/PERFORMANCE.md between the bench markers.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

SECTIONS = ("table", "api", "import", "identify", "bulk", "webhooks", "load")
DOC = Path("docs/PERFORMANCE.md")
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _machine() -> str:
    cores = os.cpu_count()
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        mem_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown memory"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        buffers = cursor.fetchone()[0]
    return (
        f"{cores} cores, {memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, PostgreSQL {pg} (shared_buffers {buffers})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI: run every section on a small agent, fail only on errors, not on targets",
    )
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Production-like: no query logging, no debug toolbars.
    os.environ["DEBUG"] = "false"
    # The webhooks section's receiver listens on loopback (inherited by its processes).
    os.environ["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        print(
            "make bench measures PostgreSQL, the production target. Set DATABASE_URL, e.g.\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/rapport_bench make bench",
            file=sys.stderr,
        )
        return 2

    from bench import api, bulk, identify, imports, load, table, webhooks
    from bench.context import prepare
    from bench.harness import render_table

    runners = {
        "table": table.run,
        "api": api.run,
        "import": imports.run,
        "identify": identify.run,
        "bulk": bulk.run,
        "webhooks": webhooks.run,
        "load": load.run,
    }
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in runners]
    if unknown:
        print(f"Unknown sections: {', '.join(unknown)}; choose from {', '.join(runners)}.")
        return 2

    started = time.monotonic()
    log = lambda line: print(line, flush=True)  # noqa: E731
    ctx = prepare(contacts=args.contacts, log=log)
    log(f"Agent {ctx.agent.public_id}: {ctx.contacts:,} contacts")
    rows = []
    for name in wanted:
        log(f"== {name}")
        rows += runners[name](ctx, repeat=args.repeat, log=log)
    table_md = render_table(rows)
    elapsed = time.monotonic() - started
    command = "DATABASE_URL=postgres://postgres@127.0.0.1:5432/rapport_bench make bench"
    report = (
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {elapsed / 60:.1f} min on {_machine()}.\n"
        f"Command: `{command}` ({ctx.contacts:,} contacts in the agent, "
        f"{args.repeat} timed requests per line after warm-up).\n\n{table_md}\n"
    )
    print()
    print(report)
    if not args.no_write and not args.smoke and set(wanted) == set(runners):
        text = DOC.read_text() if DOC.exists() else "# Performance\n"
        block = f"{START}\n{report}{END}"
        if START in text and END in text:
            text = text.split(START)[0] + block + text.split(END, 1)[1]
        else:
            text = text.rstrip() + "\n\n## Benchmark (`make bench`)\n\n" + block + "\n"
        DOC.write_text(text)
        print(f"Written to {DOC}.")
    if args.smoke:
        return 0
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
