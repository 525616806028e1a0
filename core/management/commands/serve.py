"""`manage.py serve` (what `make serve` runs): Rapport in production on one machine.

It applies migrations, collects static files (hashed and compressed, served by WhiteNoise),
then starts gunicorn (config/gunicorn.conf.py) and WORKER_PROCESSES task workers
(`manage.py worker`), and watches them:
- SIGTERM or SIGINT goes to every child: gunicorn finishes the requests in flight, each
  worker ends its current batch and hands its import or bulk action back to the queue (it
  resumes after the last committed batch); then this command exits 0.
- A task worker that dies is started again (after a pause if it keeps dying); if gunicorn
  dies, the workers are stopped and the command exits with gunicorn's status, so a
  supervisor (systemd, Kubernetes) can restart the whole.
- Under several processes the metrics are shared through PROMETHEUS_MULTIPROC_DIR, emptied
  at start (prometheus-client's multiprocess mode).

On a larger deployment run the two halves separately: `gunicorn -c config/gunicorn.conf.py
config.wsgi` on the web machines and `manage.py worker` on as many machines as the queue
needs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How long the children get to finish after a stop signal before they are killed.
STOP_TIMEOUT_SECONDS = 60
RESTART_PAUSE_SECONDS = (1, 2, 5, 10, 30)


class Command(BaseCommand):
    help = "Serve Rapport in production: migrations, static files, gunicorn and task workers"

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("WORKER_PROCESSES", "1")),
            help="Task worker processes (default: WORKER_PROCESSES or 1).",
        )
        parser.add_argument("--skip-migrate", action="store_true")
        parser.add_argument("--skip-collectstatic", action="store_true")

    def handle(self, *, workers: int, skip_migrate: bool, skip_collectstatic: bool, **_: Any):
        if workers < 0:
            raise CommandError("--workers must be 0 or more.")
        if not settings.PRODUCTION:
            self.stderr.write("Note: RAPPORT_ENV is not production; `make serve` sets it.")
        if not skip_migrate:
            call_command("migrate", interactive=False, verbosity=0)
        if not skip_collectstatic:
            call_command("collectstatic", interactive=False, verbosity=0)
        env = dict(os.environ)
        metrics_dir = env.get("PROMETHEUS_MULTIPROC_DIR")
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            Path(metrics_dir).mkdir(parents=True, exist_ok=True)
        self.stopping = False
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._stop_requested)

        base = Path(settings.BASE_DIR)
        gunicorn = [
            str(Path(sys.executable).with_name("gunicorn")),
            "--config",
            str(base / "config" / "gunicorn.conf.py"),
            "config.wsgi",
        ]
        worker = [sys.executable, str(base / "manage.py"), "worker"]
        web = subprocess.Popen(gunicorn, env=env, cwd=base)  # noqa: S603 - our own argv
        pool = [self._start(worker, env, base) for _ in range(workers)]
        failures = [0] * workers
        self.stdout.write(
            f"Serving on {os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
            f" with {workers} task worker(s); SIGTERM or Ctrl-C stops it gracefully.",
        )
        status = 0
        while not self.stopping:
            if web.poll() is not None:
                status = web.returncode or 1
                self.stderr.write(f"gunicorn exited with status {web.returncode}; stopping.")
                break
            for index, process in enumerate(pool):
                if process.poll() is None:
                    continue
                pause = RESTART_PAUSE_SECONDS[min(failures[index], len(RESTART_PAUSE_SECONDS) - 1)]
                self.stderr.write(
                    f"Task worker {process.pid} exited with status {process.returncode}; "
                    f"starting another in {pause} s."
                )
                failures[index] += 1
                self._sleep(pause)
                if self.stopping:
                    break
                pool[index] = self._start(worker, env, base)
            self._sleep(0.5)
        self._stop_all([web, *pool])
        if status:
            raise SystemExit(status)

    def _start(self, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
        return subprocess.Popen(argv, env=env, cwd=cwd)  # noqa: S603 - our own argv

    def _stop_requested(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.1)

    def _stop_all(self, processes: list[subprocess.Popen]) -> None:
        running = [p for p in processes if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
