from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The kernel every app builds on: domain errors, actors, API plumbing, keyset cursors,
    rate limits. It imports no other app of Rapport."""

    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from core import health, metrics, worker_loops
        from core.api import schema  # noqa: F401 - registers the OpenAPI extensions
        from core.prepared import prepare_marked_only

        # Only the hot hand-written statements are kept prepared (core.prepared).
        connection_created.connect(prepare_marked_only, dispatch_uid="core.prepared")

        # Every task worker reports that it is alive (/readyz, /metrics).
        worker_loops.register("worker-heartbeat", health.heartbeat_forever)
        metrics.gauges_register("workers", health.worker_gauges)
