"""Rapport settings: one file, every knob read from the environment through strict helpers.

RAPPORT_ENV=development (the default) needs no configuration at all: SQLite, DEBUG on,
a throwaway secret key. RAPPORT_ENV=production refuses to start without SECRET_KEY and
ALLOWED_HOSTS and turns on the HTTPS-only protections that `check --deploy` asks for.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from config.env import env_bool, env_choice, env_float, env_int, env_list, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

RAPPORT_ENV = env_choice("RAPPORT_ENV", ("development", "production"), "development")
PRODUCTION = RAPPORT_ENV == "production"

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
if PRODUCTION:
    SECRET_KEY = env_str("SECRET_KEY")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when RAPPORT_ENV=production.")
else:
    # Development only: a stable key so sessions survive restarts of `make run`.
    SECRET_KEY = env_str("SECRET_KEY", "dev-only-rapport-key-never-use-in-production-3f9c1a7e5b")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver", "[::1]"])

CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Django's own admin at /django-admin/: routed in development, in production only if asked.
DJANGO_ADMIN_ENABLED = env_bool("DJANGO_ADMIN_ENABLED", not PRODUCTION)

INSTALLED_APPS = [
    # First: its runserver (a larger listen backlog) takes precedence over staticfiles'.
    "core",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "django_htmx",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks_db",
    "workspaces",
    "attributes",
    "contacts",
    "identity",
    "helpdesk",
    "transfers",
    "webhooks",
    "demo",
]

MIDDLEWARE = [
    # First: the request id, the one log line per request and the request metrics see all.
    "core.observability.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the app server itself (compressed, hashed names in production).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "workspaces.timezones.TimezoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workspaces.context_processors.navigation",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
# SQLite when DATABASE_URL is unset (zero setup); PostgreSQL is the production target.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0)
    )
}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock at BEGIN, so two racing writers queue up instead
        # of one failing with "database is locked" when it tries to upgrade its lock.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The dev server and the task worker share the file; short-lived connections are fine.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Tests use a file too, not Django's shared in-memory database: the browser tests' live
    # server threads and task worker then wait for SQLite's lock (timeout above) as
    # production does, where the shared cache fails at once with "database table is locked".
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"rapport-test-{os.getpid()}.sqlite3")
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
# On PostgreSQL each server process borrows connections from its own pool (psycopg_pool)
# instead of keeping one per thread: a threaded server under a burst of widget calls then
# waits for a free connection instead of opening dozens and exhausting the server's
# max_connections. DB_POOL_SIZE=0 turns pooling off (then DB_CONN_MAX_AGE applies).
DB_POOL_SIZE = env_int("DB_POOL_SIZE", 10, minimum=0)
if IS_POSTGRES and DB_POOL_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps connections, Django must not
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_SIZE,
        # A request that waits this long for a connection fails (503 on the API/widget).
        "timeout": env_int("DB_POOL_TIMEOUT_SECONDS", 10, minimum=1),
    }
# Server-side parameters: psycopg sends each statement's text with $1, $2… and prepares the
# hot hand-written statements (identify's, the rate limits'; marked by core.prepared) once a
# connection has run one DB_PREPARE_THRESHOLD times, so PostgreSQL plans it once per
# connection instead of on every call. Planning cost more than running on the hot paths (an
# index lookup on the contacts table, with its many indexes: 0.2-1 ms to plan, 0.05 ms to
# run). ORM queries are planned for their own values every time (a generic plan can read a
# whole agent). DB_PREPARE_THRESHOLD=0 never prepares (e.g. behind a pooler that cannot keep
# prepared statements); DB_SERVER_SIDE_BINDING=false goes back to client-side binding.
DB_PREPARE_THRESHOLD = env_int("DB_PREPARE_THRESHOLD", 5, minimum=0)
if IS_POSTGRES:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=env_bool("DB_SERVER_SIDE_BINDING", True),
        prepare_threshold=DB_PREPARE_THRESHOLD or None,
    )
# Read replicas (core.replicas): PostgreSQL standbys streaming from the primary, as the
# aliases replica1, replica2, ... Dashboard and API reads of contacts, attributes,
# conversations and transfers go to a healthy one; writes, transactions, the widget and the
# worker stay on the primary. Whoever wrote reads the primary for PIN_SECONDS and then only
# from a standby that has replayed their write; a standby lagging more than MAX_LAG_SECONDS
# or unreachable is skipped.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URLS", [])
DATABASE_REPLICA_PIN_SECONDS = env_float("DATABASE_REPLICA_PIN_SECONDS", 5.0, minimum=0)
DATABASE_REPLICA_MAX_LAG_SECONDS = env_float("DATABASE_REPLICA_MAX_LAG_SECONDS", 10.0, minimum=0)
DATABASE_REPLICAS: list[str] = []
if DATABASE_REPLICA_URLS:
    if not IS_POSTGRES:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL.")
    for _number, _url in enumerate(DATABASE_REPLICA_URLS, start=1):
        _replica = dj_database_url.parse(_url, conn_max_age=DATABASES["default"]["CONN_MAX_AGE"])
        if _replica["ENGINE"] != "django.db.backends.postgresql":
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"DATABASE_REPLICA_URLS: entry {_number} is not postgres://")
        _replica["CONN_HEALTH_CHECKS"] = True
        _options = DATABASES["default"].get("OPTIONS", {})
        _replica.setdefault("OPTIONS", {}).update(
            {k: v for k, v in _options.items() if k in ("server_side_binding", "prepare_threshold")}
        )
        if _options.get("pool"):
            _replica["OPTIONS"]["pool"] = dict(_options["pool"])
        # The test runner creates no database for a standby: it streams the primary's.
        _replica["TEST"] = {"MIRROR": "default"}
        DATABASES[f"replica{_number}"] = _replica
        DATABASE_REPLICAS.append(f"replica{_number}")
    DATABASE_ROUTERS = ["core.replicas.ReplicaRouter"]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "core.replicas.ReplicaMiddleware",
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Members sign in with their email, in any case.
AUTHENTICATION_BACKENDS = ["workspaces.auth.EmailBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Failed logins allowed per (address, username) and per address inside the window.
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)


# --- Email, invitations and password resets ------------------------------------------------
_EMAIL_SCHEMES = {
    # scheme: (backend, STARTTLS, TLS from the first byte); ports default to 25, 587, 465.
    "smtp": ("django.core.mail.backends.smtp.EmailBackend", False, False),
    "smtp+tls": ("django.core.mail.backends.smtp.EmailBackend", True, False),
    "smtp+ssl": ("django.core.mail.backends.smtp.EmailBackend", False, True),
    "console": ("django.core.mail.backends.console.EmailBackend", False, False),
}


def parse_email_url(url: str, *, timeout: int = 10) -> dict[str, object]:
    """EMAIL_URL as a mailer of Django's MAILERS: `smtp://user:pass@host:port` (plain, port
    25), `smtp+tls://…` (STARTTLS, 587), `smtp+ssl://…` (TLS from the start, 465), or
    `console://` (mails printed on the server's output). User and password may be
    percent-encoded (`%40` for an @). Anything else stops the server at start-up."""
    from urllib.parse import unquote, urlsplit

    from django.core.exceptions import ImproperlyConfigured

    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _EMAIL_SCHEMES:
        raise ImproperlyConfigured(
            f"EMAIL_URL: unknown scheme {parts.scheme!r}; use {', '.join(_EMAIL_SCHEMES)}."
        )
    backend, use_tls, use_ssl = _EMAIL_SCHEMES[scheme]
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ImproperlyConfigured("EMAIL_URL: only scheme://user:password@host:port is read.")
    if scheme == "console":
        return {"BACKEND": backend}
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured("EMAIL_URL: the port is not a number from 1 to 65535.") from None
    if not parts.hostname:
        raise ImproperlyConfigured("EMAIL_URL: the SMTP host is missing (smtp://host:port).")
    options: dict[str, object] = {
        "host": parts.hostname,
        "use_tls": use_tls,
        "use_ssl": use_ssl,
        # A slow mail server must not hold a request for long.
        "timeout": timeout,
    }
    if port:
        options["port"] = port
    if parts.username:
        options["username"] = unquote(parts.username)
        options["password"] = unquote(parts.password or "")
    return {"BACKEND": backend, "OPTIONS": options}


# Unset: no mail leaves the server. Invitations then show their link to copy; password
# reset mails go to the console in development (the terminal of `make run`) and the reset
# page says it is unavailable in production, where a printed link would end up in logs.
EMAIL_URL = env_str("EMAIL_URL", "")
EMAIL_ENABLED = bool(EMAIL_URL)
if EMAIL_ENABLED:
    _mailer = parse_email_url(EMAIL_URL, timeout=env_int("EMAIL_TIMEOUT_SECONDS", 10, minimum=1))
elif PRODUCTION:
    _mailer = {"BACKEND": "workspaces.mail.NoMailBackend"}
else:
    _mailer = {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
MAILERS = {"default": _mailer}
PASSWORD_RESET_BY_EMAIL = EMAIL_ENABLED or not PRODUCTION
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Rapport <rapport@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# How long an invitation link works (it also stops after its first use or a revoke).
INVITATION_MAX_AGE_DAYS = env_int("INVITATION_MAX_AGE_DAYS", 7, minimum=1)
# How long a password reset link works (it also stops once the password has changed).
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_SECONDS", 3 * 3600, minimum=300)

# --- Webhooks (webhooks app) --------------------------------------------------------------
# Off in production: a webhook URL may then only reach public addresses (checked at connect
# time). On in development so a receiver on this machine can be the target.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env_bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", not PRODUCTION)
WEBHOOK_REQUIRE_HTTPS = env_bool("WEBHOOK_REQUIRE_HTTPS", PRODUCTION)
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 5.0, minimum=0.5)
# How often the worker looks for due deliveries (often: small passes spread the relay's CPU
# and keep the lag low; an idle look is one indexed query), and how long a claimed delivery
# stays its own.
WEBHOOK_POLL_SECONDS = env_float("WEBHOOK_POLL_SECONDS", 0.25, minimum=0.05)
WEBHOOK_LEASE_SECONDS = env_int("WEBHOOK_LEASE_SECONDS", 60, minimum=10)
# An endpoint whose deliveries have failed without a success for this long is switched off.
WEBHOOK_DISABLE_AFTER_HOURS = env_float("WEBHOOK_DISABLE_AFTER_HOURS", 5 * 24, minimum=1)
# How long the secret replaced by a rotation keeps signing beside the new one.
WEBHOOK_ROTATION_GRACE_HOURS = env_float("WEBHOOK_ROTATION_GRACE_HOURS", 24, minimum=0)
WEBHOOK_MAX_ENDPOINTS = env_int("WEBHOOK_MAX_ENDPOINTS", 20, minimum=1)
# Delivered and failed deliveries (and their messages) older than this are deleted.
WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", 30, minimum=1)

# One cache every process shares (SPEC 9: limits hold across processes and machines):
# Redis when REDIS_URL names one, else a table in the database (no extra server needed;
# migrations create it). Rate-limit counters go to Redis too, or to their own table with
# one atomic upsert per call (core.ratelimit).
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
    RATE_LIMIT_STORE = "cache"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "rapport_cache",
        }
    }
    RATE_LIMIT_STORE = "database"
# Per-process memos that only save work (a sort index already requested): never shared,
# never a correctness matter, and free to read on every request.
CACHES["local"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "local"}

# --- I18N / static ------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Production serves what `collectstatic` wrote (make serve runs it): names carry a hash of
# the content and WhiteNoise sends them gzip-compressed with a far-future cache header.
# Development and tests read the apps' folders directly.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG and not PRODUCTION
WHITENOISE_MAX_AGE = 365 * 86400 if PRODUCTION else 0
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))

# --- Security -----------------------------------------------------------------------------
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "https:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Probes and scrapers talk plain HTTP to the app server itself.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto, and take the client's
# address for rate limits from the last X-Forwarded-For entry (the one the proxy added).
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Identity secrets must be readable again (to verify HMACs and JWTs), so they are stored
# encrypted with this key rather than hashed. Defaults to a key derived from SECRET_KEY.
RAPPORT_ENCRYPTION_KEY = env_str("RAPPORT_ENCRYPTION_KEY", "")
# How long a rotated identity secret keeps verifying.
IDENTITY_SECRET_GRACE_SECONDS = env_int("IDENTITY_SECRET_GRACE_SECONDS", 86400, minimum=0)

# --- Contacts -----------------------------------------------------------------------------
# A cap on how many custom attributes an agent may hold (identify can create them).
MAX_ATTRIBUTES_PER_AGENT = env_int("MAX_ATTRIBUTES_PER_AGENT", 100, minimum=1)

# --- Import and export ----------------------------------------------------------------------
# Larger files are refused (413 on the API) before they are stored; so are files with more
# data rows than IMPORT_MAX_ROWS (the row count is known after the first pass).
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 256 * 1024 * 1024, minimum=1024)
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 1_048_576, minimum=1)
# Rows written per transaction (progress is saved with each batch).
IMPORT_BATCH_ROWS = env_int("IMPORT_BATCH_ROWS", 10000, minimum=1)
# After each batch an import rests this fraction of the time the batch took (0: flat out),
# so a large import leaves room for the dashboard and the widget.
IMPORT_PAUSE_RATIO = env_float("IMPORT_PAUSE_RATIO", 0.0, minimum=0)
# An import that rests writes batches of at most this many rows: each holds a core of the
# database for a tenth of a second or so, not a second, so the widget's calls that arrive
# meanwhile queue that much less.
IMPORT_RESTING_BATCH_ROWS = env_int("IMPORT_RESTING_BATCH_ROWS", 1000, minimum=1)
# After an import that created this many contacts or more, PostgreSQL's statistics of the
# contacts table are refreshed (ANALYZE), so the planner knows the new agent (0: never).
IMPORT_ANALYZE_FROM_ROWS = env_int("IMPORT_ANALYZE_FROM_ROWS", 10000, minimum=0)
# The set-based COPY path on PostgreSQL; off means the row-by-row services everywhere.
IMPORT_FAST_PATH = env_bool("IMPORT_FAST_PATH", True)
# A running import whose worker has not reported for this long can be resumed.
IMPORT_STALE_SECONDS = env_int("IMPORT_STALE_SECONDS", 300, minimum=10)
# Bulk actions on everything a view matches: contacts per transaction, and how long the job
# rests after each batch, as a fraction of the time that batch took (0: flat out).
BULK_BATCH_ROWS = env_int("BULK_BATCH_ROWS", 2000, minimum=1)
BULK_PAUSE_RATIO = env_float("BULK_PAUSE_RATIO", 0.5, minimum=0)
# Uploads above this size are spooled to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Widget --------------------------------------------------------------------------------
# How long a widget session token (returned by identify) stays valid.
WIDGET_SESSION_MAX_AGE_SECONDS = env_int("WIDGET_SESSION_MAX_AGE_SECONDS", 30 * 86400, minimum=60)
WIDGET_MAX_BODY_BYTES = env_int("WIDGET_MAX_BODY_BYTES", 64 * 1024, minimum=1024)
# Public widget calls that can create contacts (identify, starting a conversation), per
# client address and per agent. The per-agent rate sits above what one server can serve.
WIDGET_RATE_LIMIT_PER_ADDRESS = env_rate("WIDGET_RATE_LIMIT_PER_ADDRESS", "120/minute")
WIDGET_RATE_LIMIT_PER_AGENT = env_rate("WIDGET_RATE_LIMIT_PER_AGENT", "60000/minute")
# How long each process keeps the agent a widget call names and its identity secrets
# (workspaces.agent_cache); 0 reads them on every call.
WIDGET_AGENT_CACHE_SECONDS = env_int("WIDGET_AGENT_CACHE_SECONDS", 5, minimum=0)

# --- Identity (widget identify, help-center hand-off, demo host page) ----------------------
# How long a hand-off token (`?rapport_identity=…`, carrying a verified visitor to the help
# center) can be redeemed. It travels in a URL, so it is short-lived and single-use.
IDENTITY_HANDOFF_MAX_AGE_SECONDS = env_int("IDENTITY_HANDOFF_MAX_AGE_SECONDS", 120, minimum=10)
# The longest a signed identify JWT may live (`exp` at most this far ahead): a token copied
# out of a page stops working within this time.
IDENTITY_TOKEN_MAX_LIFETIME_SECONDS = env_int(
    "IDENTITY_TOKEN_MAX_LIFETIME_SECONDS", 86400, minimum=60
)
# The demo host page at /demo/widget/ (signs JWTs for any user of the signed-in member's
# agents): on in development only.
WIDGET_DEMO_ENABLED = env_bool("WIDGET_DEMO_ENABLED", DEBUG and not PRODUCTION)

# --- Background tasks ---------------------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

# --- REST framework -----------------------------------------------------------------------
# Calls allowed per API key, counted across every process (core.ratelimit).
API_RATE_LIMIT = env_rate("API_RATE_LIMIT", "6000/minute")
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["workspaces.api.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["workspaces.api.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["workspaces.api.ApiKeyRateThrottle"],
    "EXCEPTION_HANDLER": "core.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Rapport API",
    "DESCRIPTION": "Contacts, custom attributes, tags, imports and identity for support agents.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two choice sets share the field name "status": name each enum after what it is.
    "ENUM_NAME_OVERRIDES": {
        "ConversationStatusEnum": "helpdesk.models.Conversation.Status",
        "BulkItemStatusEnum": ["created", "updated", "error"],
    },
}

# --- REST API v1 (contacts, attributes, tags) ------------------------------------------------
# JSON in and out with orjson; bodies above this size are refused with 413 before parsing.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = ["core.api.json_io.ApiJSONRenderer"]
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["core.api.json_io.ApiJSONParser"]
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "core.api.schema.add_common_error_responses",
]

# --- Logging and metrics -------------------------------------------------------------------
# JSON lines in production (one per request, with its request id; see core.observability),
# key=value lines in development. Personal data, keys and tokens are never logged.
LOG_FORMAT = env_choice("LOG_FORMAT", ("json", "console"), "json" if PRODUCTION else "console")
LOG_LEVEL = env_choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), "INFO")
# The one line per request ("rapport.request"); off in development, where runserver prints
# its own.
REQUEST_LOG = env_bool("REQUEST_LOG", PRODUCTION)
from core.observability import logging_config, structlog_configure  # noqa: E402

structlog_configure()
LOGGING = logging_config(fmt=LOG_FORMAT, level=LOG_LEVEL)

# /metrics (Prometheus) answers a scraper that sends `Authorization: Bearer <METRICS_TOKEN>`
# or connects from METRICS_ALLOWED_NETWORKS (addresses or CIDR blocks, matched against the
# connecting address: behind a proxy, use the token). Unset in production: 404. Development
# allows loopback.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list(
    "METRICS_ALLOWED_NETWORKS", [] if PRODUCTION else ["127.0.0.0/8", "::1/128"]
)
# /readyz: the newest worker heartbeat must be younger than this (the worker writes one
# every WORKER_HEARTBEAT_SECONDS); READYZ_REQUIRE_WORKER=false leaves the worker out.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 10, minimum=1)
# Task workers (imports, bulk actions, the webhooks relay) run this many steps below normal
# CPU priority (`nice`, 0-19): on a host they share with the web server, requests go first.
WORKER_NICE = min(env_int("WORKER_NICE", 10, minimum=0), 19)
READYZ_WORKER_MAX_AGE_SECONDS = env_int("READYZ_WORKER_MAX_AGE_SECONDS", 60, minimum=5)
READYZ_REQUIRE_WORKER = env_bool("READYZ_REQUIRE_WORKER", True)
