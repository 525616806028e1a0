"""Every request gets an id, one structured log line and its place in the metrics.

- The request id is the caller's `X-Request-ID` when it is a plain token (letters, digits,
  `.-_:`, up to 128 characters), else a new one; it is sent back in the same header and
  bound to every log line written while the request runs (structlog's context variables),
  and it travels with the tasks the request enqueues (`request_id_current` when enqueuing,
  `task_logging` in the task).
- The line (logger "rapport.request", when REQUEST_LOG is on: production by default) says
  method, path, view, status, duration, database queries and time, and who asked: the
  member's user id, or the API key's id and agent, or the widget's agent, bound by the
  code that authenticates them (`bind`). Never a query string, a header, a body, a key or
  a token: a path holds ids only, while query strings may hold emails (`?q=`).
- Logs are JSON lines in production (LOG_FORMAT=json), readable key=value lines in
  development: the same processors either way (`logging_config`).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import structlog
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse

from core import metrics

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

logger = structlog.get_logger("rapport.request")


def request_id_for(request: HttpRequest) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def request_id_current() -> str:
    """The id of the request (or task) this code runs for, or ""."""
    return str(structlog.contextvars.get_contextvars().get("request_id", ""))


@contextmanager
def task_logging(request_id: str, **values: Any) -> Iterator[None]:
    """Inside a task: its log lines carry the id of the request that enqueued it (a new one
    when none did), and `values` (ids only)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id or uuid.uuid4().hex, **values)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()


def bind(**values: Any) -> None:
    """Add who or what a request is about to its log lines (ids only, never secrets)."""
    structlog.contextvars.bind_contextvars(**values)


class _QueryClock:
    """Counts the queries of a request and the time they took, on every database alias."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


def view_name(request: HttpRequest) -> str:
    """The URL pattern's name ("api:contact-detail"), few enough to be a metric label."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"


class RequestObservabilityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        clock = _QueryClock()
        started = time.perf_counter()
        try:
            with ExitStack() as stack:
                for alias in connections:
                    stack.enter_context(connections[alias].execute_wrapper(clock))
                response = self.get_response(request)
            seconds = time.perf_counter() - started
            response[REQUEST_ID_HEADER] = request_id
            view = view_name(request)
            status = response.status_code
            metrics.REQUEST_SECONDS.labels(view, request.method, str(status)).observe(seconds)
            metrics.REQUEST_QUERIES.labels(view).observe(clock.count)
            if clock.count:
                metrics.DB_QUERIES.labels(view).inc(clock.count)
            if settings.REQUEST_LOG:
                user = getattr(request, "user", None)
                if user is not None and getattr(user, "is_authenticated", False):
                    user_id = getattr(user, "pk", None)
                    if user_id is not None:
                        bind(user_id=user_id)
                logger.info(
                    "request",
                    method=request.method,
                    path=request.path,
                    view=view,
                    status=status,
                    duration_ms=round(seconds * 1000, 1),
                    db_queries=clock.count,
                    db_ms=round(clock.seconds * 1000, 1),
                )
            return response
        finally:
            structlog.contextvars.clear_contextvars()


# --- Configuration --------------------------------------------------------------------------

_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def structlog_configure() -> None:
    """structlog hands its events to the standard library's logging, so one handler (with
    `logging_config`'s formatter) writes both structlog's lines and every other logger's."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """Django's LOGGING: one stream handler whose lines are JSON (`fmt` "json") or
    key=value ("console"), with the request id of the request or task they belong to."""
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                # Not the records' `extra`: Django's error records carry the request there.
                "foreign_pre_chain": _SHARED,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own request lines would repeat ours (and, for errors, carry the
            # request's headers); the status line is in "rapport.request".
            "django.request": {"level": "ERROR"},
        },
    }
