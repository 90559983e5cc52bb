"""SpermGrade settings.

Everything that varies per deployment comes from the environment through the small
``env_*`` helpers of ``config/env.py``; a bad value stops start-up with
``ImproperlyConfigured`` naming the variable. ``.env.example`` lists every variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import plotly
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_origins,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


VAR_DIR = Path(env_str("SPERMGRADE_VAR_DIR", str(BASE_DIR / "var")))

# Off unless set: production is the default; `make demo` and the tests set DEBUG=true.
DEBUG = env_bool("DEBUG", False)

_secret = os.environ.get("SECRET_KEY")
if not _secret:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off SpermGrade refuses to start "
            "without one; generate it with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    # Demo mode: keep one generated key under var/ so sessions survive restarts.
    # O_EXCL: when the web server and the worker start together, one key wins and
    # both read it; 0600 because the key signs sessions.
    _key_file = VAR_DIR / "secret_key"
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    try:
        _fd = os.open(_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _secret = _key_file.read_text().strip()
    else:
        _secret = secrets.token_urlsafe(50)
        with os.fdopen(_fd, "w") as _out:
            _out.write(_secret)
elif not DEBUG and "change-me" in _secret:
    raise ImproperlyConfigured(
        "SECRET_KEY is still the placeholder from .env.example; replace it with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
SECRET_KEY = _secret

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served locally: labs may be offline
    "django_celery_beat",  # retraining schedules, editable in the admin
    "annotation",
    "registry",
    "exports",
    "dashboards",
    "jobs",  # liveness of background work: heartbeats, worker presence, reaper
    "operations",  # running it: /healthz, /readyz, /metrics, backup and restore
    "workers",
    "django_prometheus",  # request metrics, served by operations at /metrics
    "django_otp",  # admins' second factor (annotation/second_factor.py)
    "django_otp.plugins.otp_totp",
]

MIDDLEWARE = [
    # First: /healthz and /readyz answer the proxy's and docker's checks, which
    # come over plain HTTP with the container's name as host.
    "operations.middleware.HealthMiddleware",
    # Requests, latencies and responses for /metrics (first and last of the rest).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): signed in with a second factor this session.
    "django_otp.middleware.OTPMiddleware",
    # Admins with a second factor (or all admins, ADMIN_SECOND_FACTOR=required)
    # give it before any other page.
    "annotation.second_factor.SecondFactorMiddleware",
    # Before anything reads a body (the CSRF check's process_view does):
    "annotation.uploads.UploadGateMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "annotation.middleware.SecurityHeadersMiddleware",
    # Last, so it sees a view's exception first: a database outage is a 503.
    "annotation.middleware.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
# Content-Security-Policy and Permissions-Policy of every response
# (annotation/middleware.py); empty turns a header off.
CONTENT_SECURITY_POLICY = os.environ.get(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; font-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
).strip()
PERMISSIONS_POLICY = os.environ.get(
    "PERMISSIONS_POLICY",
    "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
).strip()

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        "DATABASE_URL",
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'spermgrade.sqlite3'}"),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"


LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# plotly.js comes from the plotly package and is served from our static files,
# never from a CDN (labs may be offline).
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("plotly", Path(plotly.__file__).parent / "package_data"),
]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Uploaded recordings; larger files are refused with a 413-style form error.
MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 512, minimum=1)
# Clips from recordings: CLIP_FRAMES frames at CLIP_FPS, whatever the recording's
# rate (16 at 15 fps: about 1.07 s of motion; a 30 fps recording every 2nd frame).
CLIP_FRAMES = env_int("CLIP_FRAMES", 16, minimum=2)
CLIP_FPS = env_float("CLIP_FPS", 15.0, minimum=1.0, maximum=240.0)
# Longer or larger recordings end in a clear error instead of hogging a worker.
RECORDING_MAX_FRAMES = env_int("RECORDING_MAX_FRAMES", 20_000, minimum=16)
RECORDING_MAX_PIXELS = env_int("RECORDING_MAX_PIXELS", 4096 * 4096, minimum=64 * 64)
# Bodies other than an operator's recording upload: at most this many bytes
# (refused from Content-Length before reading), fields and files.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int(
    "DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024, minimum=64 * 1024
)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int(
    "DATA_UPLOAD_MAX_NUMBER_FIELDS", 1000, minimum=10
)
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("DATA_UPLOAD_MAX_NUMBER_FILES", 10, minimum=1)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# The first handler counts bytes as they stream in and stops past the limit.
FILE_UPLOAD_HANDLERS = [
    "annotation.uploads.LimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
FILE_UPLOAD_TEMP_DIR = (
    env_str("FILE_UPLOAD_TEMP_DIR") if os.environ.get("FILE_UPLOAD_TEMP_DIR") else None
)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the grading page reads it to send X-CSRFToken
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# HTTPS: with DEBUG off, plain HTTP is redirected and HSTS sent (a year) by default,
# as production runs behind the TLS proxy (TRUST_X_FORWARDED_PROTO); a server on
# plain HTTP must say so (SECURE_SSL_REDIRECT=false, SECURE_HSTS_SECONDS=0).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int(
    "SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Preloading is decided by submitting a whole registrable domain to
# hstspreload.org, which no setting here does or undoes; the directive only consents
# to it. So it stays off unless asked for, and check --deploy does not remind every
# deployment of it (security.W021).
SILENCED_SYSTEM_CHECKS = ["security.W021"]
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from
# clients), requests count as HTTPS.
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Grading rules.
VOTES_PER_CLIP = env_int("VOTES_PER_CLIP", 40, minimum=1)
CLIP_LEASE_SECONDS = env_int("CLIP_LEASE_SECONDS", 300, minimum=10)
# A lapsed lease is kept this long as proof of the offer: a vote sent late from
# the page's offline outbox still lands (once), a vote for a clip never offered
# does not.
LEASE_KEEP_SECONDS = env_int("LEASE_KEEP_SECONDS", 7 * 24 * 3600, minimum=60)
VOTE_UNDO_SECONDS = env_int("VOTE_UNDO_SECONDS", 120, minimum=0)
REPEAT_SHARE = env_float("REPEAT_SHARE", 0.05, minimum=0.0, maximum=0.5)
REPEAT_MIN_GAP_CLIPS = env_int("REPEAT_MIN_GAP_CLIPS", 20, minimum=1)
REPEAT_MIN_GAP_HOURS = env_float("REPEAT_MIN_GAP_HOURS", 24.0, minimum=0.0)
# Vote budget (off at 0): a clip stops collecting votes once it has at least
# VOTE_BUDGET_MIN_VOTES and every grade share's 95 % credible interval is at most
# VOTE_BUDGET_CI_WIDTH wide; the queue then offers the least certain clips first,
# except on a random share of requests. VOTES_PER_CLIP stays the cap.
VOTE_BUDGET_CI_WIDTH = env_float("VOTE_BUDGET_CI_WIDTH", 0.0, minimum=0.0, maximum=1.0)
# Expected-EMD vote budget (off at 0): a clip also stops once the expected EMD
# between its votes and its distribution with VOTES_PER_CLIP votes (the remaining
# votes Dirichlet-multinomial, the prior fitted on the panel's clips) is below
# this, never before VOTE_BUDGET_MIN_VOTES (annotation/budget_emd.py).
VOTE_BUDGET_EMD = env_float("VOTE_BUDGET_EMD", 0.0, minimum=0.0, maximum=1.0)
VOTE_BUDGET_MIN_VOTES = env_int("VOTE_BUDGET_MIN_VOTES", 10, minimum=1)
VOTE_BUDGET_RANDOM_SHARE = env_float(
    "VOTE_BUDGET_RANDOM_SHARE", 0.2, minimum=0.0, maximum=1.0
)
# Active allocation (with the vote budget on): outside the random share, clips the
# active model disagrees with most ("disagreement": model-panel EMD) or is least
# sure of ("entropy") come first. "off" (default) keeps the least certain first.
VOTE_BUDGET_MODEL_PRIORITY = env_str("VOTE_BUDGET_MODEL_PRIORITY", "off")
if VOTE_BUDGET_MODEL_PRIORITY not in {"off", "disagreement", "entropy"}:
    raise ImproperlyConfigured(
        f"VOTE_BUDGET_MODEL_PRIORITY={VOTE_BUDGET_MODEL_PRIORITY!r}: use off, "
        "disagreement or entropy."
    )
# Sign-in throttling, trusted proxies, who reads /metrics, sign-in through an
# identity provider and the admins' second factor: config/settings_access.py.
from config.settings_access import *  # noqa: E402, F403

# The cache holds the sign-in failure counts: redis://host:6379/2 shares them
# between web processes (docker-compose sets it). With DEBUG off it must be set:
# a per-process cache would multiply the limits by the number of processes.
# CACHE_URL=local keeps a memory cache on purpose (one web process only).
_cache_url = env_str("CACHE_URL") if os.environ.get("CACHE_URL") else ""
if (
    _cache_url
    and _cache_url != "local"
    and not _cache_url.startswith(("redis://", "rediss://"))
):
    raise ImproperlyConfigured(
        f"CACHE_URL={_cache_url!r}: use redis://host:6379/2 (or local for one "
        "web process), or leave it empty with DEBUG on."
    )
if not _cache_url and not DEBUG:
    raise ImproperlyConfigured(
        "CACHE_URL is not set: with DEBUG off, the sign-in throttle needs a cache "
        "every web process shares (CACHE_URL=redis://host:6379/2); set "
        "CACHE_URL=local only for a server with one web process."
    )
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
        }
        if _cache_url.startswith("redis")
        else {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            # Room for a flood of usernames: a culled entry must not be a lock.
            "OPTIONS": {"MAX_ENTRIES": 200_000},
        }
    )
}
# Dashboards: an expert whose median time per clip is below this is flagged.
FAST_GRADING_SECONDS = env_float("FAST_GRADING_SECONDS", 2.0, minimum=0.0)
# Up to this many votes the dashboard recomputes stale statistics while it loads;
# above it, it shows the last figures and asks the worker to refresh them.
PANEL_STATISTICS_INLINE_VOTES = env_int(
    "PANEL_STATISTICS_INLINE_VOTES", 20000, minimum=0
)

# The session's user is loaded with its role groups in one query.
AUTHENTICATION_BACKENDS = [
    "annotation.permissions.RoleModelBackend",
    # Does nothing unless OIDC_CLIENT_ID is set.
    "annotation.oidc.RoleOIDCBackend",
]

REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": [
        "annotation.parsers.TextJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "annotation.pagination.Pagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "annotation.apis.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SpermGrade API",
    "DESCRIPTION": "Expert grading of tracked single-sperm clips (A good ... E bad).",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "annotation.api_schema.add_error_responses",
    ],
}

# Celery: Redis in production; the filesystem transport by default so the demo needs
# no server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
_celery_dir = VAR_DIR / "celery"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        # kombu's default is ./control, which would litter the working directory.
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem://")
    else {}
)
CELERY_RESULT_BACKEND = env_str(
    "CELERY_RESULT_BACKEND",
    CELERY_BROKER_URL
    if CELERY_BROKER_URL.startswith("redis")
    else f"file://{_celery_dir / 'results'}",
)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Threads of each task's computation (PyTorch, OpenCV); 0 = the worker's cores (its
# CPU affinity) divided by its concurrency, at least 1 (workers/threads.py).
WORKER_COMPUTE_THREADS = env_int("WORKER_COMPUTE_THREADS", 0, minimum=0)
CELERY_TASK_TIME_LIMIT_CPU = env_int("CELERY_TASK_TIME_LIMIT_CPU", 3600, minimum=10)
# One fold of a training run (or one prediction pass), on either queue.
TRAINING_TIME_LIMIT_SECONDS = env_int(
    "TRAINING_TIME_LIMIT_SECONDS", 6 * 3600, minimum=10
)
# Every task by its explicit name (workers/tasks.py) and the queue that runs it. The
# web apps send tasks by these names (annotation.services.enqueue); a test checks
# that each one is a registered task.
CELERY_TASK_ROUTES = {
    "workers.tasks.panel_snapshot": {"queue": "cpu"},
    "workers.tasks.recording_preprocess": {"queue": "cpu"},
    "workers.tasks.recording_inspect": {"queue": "cpu"},
    "workers.tasks.panel_statistics_refresh": {"queue": "cpu"},
    # The model loop: a run's folds and predictions go to the queue its profile
    # chose (gpu, or cpu for the CPU profiles); the route is the default.
    "workers.tasks.training_run_start": {"queue": "cpu"},
    "workers.tasks.training_fold": {"queue": "gpu"},
    "workers.tasks.training_run_register": {"queue": "gpu"},
    "workers.tasks.version_predict": {"queue": "gpu"},
    # A new version's dashboard figures, beside (not before) its predictions.
    "workers.tasks.version_figures": {"queue": "cpu"},
    "workers.tasks.training_runs_reap": {"queue": "cpu"},
    "workers.tasks.jobs_reap": {"queue": "cpu"},
    "workers.tasks.retrain_when_due": {"queue": "cpu"},
    "workers.tasks.predictions_catch_up": {"queue": "cpu"},
    "workers.tasks.dataset_export": {"queue": "cpu"},
    "workers.tasks.dataset_import": {"queue": "cpu"},
}
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# The panel statistics behind the dashboards, recomputed when votes changed.
PANEL_STATISTICS_REFRESH_SECONDS = env_int(
    "PANEL_STATISTICS_REFRESH_SECONDS", 300, minimum=10
)
# A queued refresh that has not started (its message lost) stops blocking others
# after this long; a running one holds its claim while its heartbeat is fresh.
PANEL_STATISTICS_CLAIM_SECONDS = env_int(
    "PANEL_STATISTICS_CLAIM_SECONDS", 900, minimum=60
)
CELERY_BEAT_SCHEDULE = {
    "panel-statistics-refresh": {
        "task": "workers.tasks.panel_statistics_refresh",
        "schedule": float(PANEL_STATISTICS_REFRESH_SECONDS),
    },
    # Any job whose worker stopped beating is failed (or re-queued once).
    "jobs-reap": {
        "task": "workers.tasks.jobs_reap",
        "schedule": 30.0,
    },
    # Clips created after the active version's registration get its prediction.
    "predictions-catch-up": {
        "task": "workers.tasks.predictions_catch_up",
        "schedule": 300.0,
    },
}
# Beat reads its schedule from the database (django-celery-beat): the entries above
# are copied there, and the retraining schedules (nightly, "N new fully voted
# clips") are rows an admin edits under Periodic tasks.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Time limits per queue, applied to each task routed there: the soft limit raises
# inside the task (which then records the failure); the hard one stops a task that
# ignores it.
_QUEUE_TIME_LIMITS = {
    "cpu": CELERY_TASK_TIME_LIMIT_CPU,
    "gpu": TRAINING_TIME_LIMIT_SECONDS,
}
_TASK_TIME_LIMITS = {
    "workers.tasks.training_fold": TRAINING_TIME_LIMIT_SECONDS,
    "workers.tasks.training_run_register": TRAINING_TIME_LIMIT_SECONDS,
    "workers.tasks.version_predict": TRAINING_TIME_LIMIT_SECONDS,
}
CELERY_TASK_ANNOTATIONS = {
    name: {
        "soft_time_limit": _TASK_TIME_LIMITS.get(
            name, _QUEUE_TIME_LIMITS[route["queue"]]
        ),
        "time_limit": _TASK_TIME_LIMITS.get(name, _QUEUE_TIME_LIMITS[route["queue"]])
        + 60,
    }
    for name, route in CELERY_TASK_ROUTES.items()
}
# A worker takes one task at a time and acknowledges it after it ran (the tasks are
# idempotent: conditional state changes, per-attempt folders, "already done"
# checks). A worker child killed mid-task (SIGKILL, out of memory) has its message
# rejected and re-queued by the worker's main process, so the task runs again;
# JOB_MAX_DELIVERIES bounds how often. A whole worker that dies leaves its job's
# heartbeat to go stale, and the reaper (jobs_reap) ends or re-queues the job.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The embedded filesystem broker has no event loop, so a prefork worker feeds its
# children through one shared queue guarded by a lock: a child killed while idle
# (waiting on that queue) dies holding the lock, and the worker then receives
# tasks that never run and ignores TERM. Its workers use threads instead (nothing
# to kill but the whole worker, which restarts clean). With Redis, prefork gives
# each child its own pipe and a killed child is simply replaced.
CELERY_WORKER_POOL = env_str(
    "CELERY_WORKER_POOL",
    "threads" if CELERY_BROKER_URL.startswith("filesystem://") else "prefork",
)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# How long the main process waits for a killed child's result before it re-queues
# the task (Celery's default 10 s; nothing here reads task results).
CELERY_WORKER_LOST_WAIT = 3.0
CELERY_TASK_TRACK_STARTED = True
# Video work holds large arrays; a fresh child process after some tasks returns
# the memory to the system.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int(
    "CELERY_WORKER_MAX_TASKS_PER_CHILD", 20, minimum=1
)
# Redis re-delivers an unacknowledged task after this long: longer than a fold may
# take, so a long training is not started twice (a fold also refuses to start
# while another worker's heartbeat on it is fresh).
if CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": TRAINING_TIME_LIMIT_SECONDS + 600
    }

# The model loop (registry). A snapshot takes the active clips with at least
# SNAPSHOT_MIN_VOTES votes at its cutoff.
SNAPSHOT_MIN_VOTES = env_int("SNAPSHOT_MIN_VOTES", 5, minimum=1)
# Liveness of every background job (jobs/): a thread in the worker refreshes the
# job's heartbeat every JOB_HEARTBEAT_SECONDS while its task runs; after
# JOB_HEARTBEAT_TIMEOUT_SECONDS without one its worker counts as lost (killed, out
# of memory, machine gone; a worker child known dead on the same machine counts at
# once) and JOB_LOST_ACTION says what happens: "fail" the job with a message, or
# "requeue" it once (training folds, the run's start and registration). The
# TRAINING_* names are the older spellings, still read.
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 5, minimum=1)
JOB_HEARTBEAT_TIMEOUT_SECONDS = env_int(
    "JOB_HEARTBEAT_TIMEOUT_SECONDS",
    env_int("TRAINING_HEARTBEAT_TIMEOUT_SECONDS", 180, minimum=5),
    minimum=5,
)
JOB_LOST_ACTION = env_str("JOB_LOST_ACTION", env_str("TRAINING_LOST_RUN", "fail"))
if JOB_LOST_ACTION not in {"fail", "requeue"}:
    raise ImproperlyConfigured(
        f"JOB_LOST_ACTION={JOB_LOST_ACTION!r}: use fail or requeue."
    )
if JOB_HEARTBEAT_SECONDS * 3 > JOB_HEARTBEAT_TIMEOUT_SECONDS:
    raise ImproperlyConfigured(
        f"JOB_HEARTBEAT_TIMEOUT_SECONDS={JOB_HEARTBEAT_TIMEOUT_SECONDS} must be at "
        f"least three heartbeats (JOB_HEARTBEAT_SECONDS={JOB_HEARTBEAT_SECONDS})."
    )
# A task whose worker died is delivered again (acks_late, reject on worker loss);
# after this many deaths on one job it is given up and the job ends failed, rather
# than killing workers for ever (a job that runs out of memory every time).
JOB_MAX_DELIVERIES = env_int("JOB_MAX_DELIVERIES", 3, minimum=1)
# Benchmarks only (fault injection): "step=seconds,..." holds a task at a step so
# benchmarks/loop_faults.py can kill its worker there. "off": no pause.
JOB_STAGE_PAUSE = env_str("JOB_STAGE_PAUSE", "off")
# Workers write their own presence this often; a queue no running worker has
# reported on for WORKER_SILENT_AFTER_SECONDS is named on the registry and home
# pages ("no worker is serving the gpu queue").
WORKER_PRESENCE_SECONDS = env_int("WORKER_PRESENCE_SECONDS", 10, minimum=1)
WORKER_SILENT_AFTER_SECONDS = env_int("WORKER_SILENT_AFTER_SECONDS", 60, minimum=5)
# Clips predicted per batch after a promotion.
PREDICT_BATCH_CLIPS = env_int("PREDICT_BATCH_CLIPS", 256, minimum=1)
# Patient codes become keyed-hash pseudonyms in snapshots and exports; keep this
# key secret and stable (changing it changes every pseudonym). Default: derived
# from SECRET_KEY.
PSEUDONYM_KEY = os.environ.get("PSEUDONYM_KEY") or f"pseudonym:{SECRET_KEY}"
# Times in exports are rounded down to this many seconds (vote times to the
# microsecond say more about who graded when than a dataset needs).
EXPORT_TIME_RESOLUTION_SECONDS = env_int("EXPORT_TIME_RESOLUTION_SECONDS", 1, minimum=1)
# Imported bundles (exports/import_checks.py): every member is bounded before it is
# read. A clip array may be at most IMPORT_MAX_CLIP_FRAMES x IMPORT_MAX_CLIP_PX^2 x 3.
IMPORT_MAX_MEMBERS = env_int("IMPORT_MAX_MEMBERS", 2_000_000, minimum=16)
IMPORT_MAX_TEXT_MB = env_int("IMPORT_MAX_TEXT_MB", 2048, minimum=1)
IMPORT_MAX_VIDEO_MB = env_int("IMPORT_MAX_VIDEO_MB", 64, minimum=1)
IMPORT_MAX_CLIP_FRAMES = env_int("IMPORT_MAX_CLIP_FRAMES", 240, minimum=2)
IMPORT_MAX_CLIP_PX = env_int("IMPORT_MAX_CLIP_PX", 300, minimum=16)
IMPORT_MAX_ARRAY_BYTES = 4096 + IMPORT_MAX_CLIP_FRAMES * IMPORT_MAX_CLIP_PX**2 * 3
# Recorded with every model version; empty = the git commit of the checkout.
CODE_VERSION = os.environ.get("SPERMGRADE_CODE_VERSION", "")

_log_level = env_str("LOG_LEVEL", "INFO").upper()
if _log_level not in _LOG_LEVELS:
    raise ImproperlyConfigured(
        f"LOG_LEVEL={_log_level!r}: use one of {', '.join(sorted(_LOG_LEVELS))}."
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "client_errors_one_line": {
            "()": "annotation.log_filters.ClientErrorsWithoutTraceback"
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["client_errors_one_line"],
        }
    },
    "root": {"handlers": ["console"], "level": _log_level},
}
