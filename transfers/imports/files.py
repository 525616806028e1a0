"""Where an import keeps its files: the upload and the dry-run report, in one folder per job.

The report is written line by line while a dry run goes, so it needs a local file (the
default FileSystemStorage under MEDIA_ROOT, shared by the web server and the task worker).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import IO, Any

from django.core.files.storage import default_storage


def job_folder(job_id: Any) -> str:
    return f"imports/{job_id}"


def upload_name(job_id: Any, filename: str) -> str:
    return f"{job_folder(job_id)}/{filename[-120:]}"


def report_name(job) -> str:
    return f"{job_folder(job.pk)}/dry-run-report.csv"


def report_exists(job) -> bool:
    return default_storage.exists(report_name(job))


def report_open(job) -> IO[str]:
    """The dry-run report, emptied, for writing (the views offer it only after a dry run;
    the job's folder goes when the real import completes or the job is deleted)."""
    path = Path(default_storage.path(report_name(job)))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", newline="", encoding="utf-8")


def files_delete(job_id: Any) -> None:
    """Remove a job's upload and report: they hold personal data."""
    shutil.rmtree(default_storage.path(job_folder(job_id)), ignore_errors=True)
