"""Settings of the benchmark's gunicorn: the project's own, plus the ceiling view's URL."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
