"""Settings, all read from the environment once, here.

With nothing set, a fresh checkout runs the embedded mode: SQLite, Celery over
kombu's filesystem transport, an in-process channel layer, files under ./var.
Production sets DATABASE_URL (PostgreSQL via psycopg) and REDIS_URL (Celery broker,
result store and channel layer); see docs/deploy.md.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "embedded-mode-insecure-key" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
ALLOWED_HOSTS = env_str("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in env_str("CSRF_TRUSTED_ORIGINS").split(",") if o]

# Where recordings live: chunks while a recording is in flight, then the session files.
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
# In-flight chunks stay on a filesystem path even with object storage: every daphne
# process appends to them and the assembling worker reads them, so with several
# machines this must be one shared filesystem (NFS or the like).
CHUNK_STORE_DIR = Path(env_str("CHUNK_STORE_DIR", str(VAR_DIR / "chunks")))


def s3_storage_options() -> dict:
    """django-storages' S3Storage, from AWS_* variables (any S3-compatible store)."""
    bucket = env_str("AWS_STORAGE_BUCKET_NAME")
    if not bucket:
        raise ImproperlyConfigured("STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
    return {
        "bucket_name": bucket,
        "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,  # None: AWS itself
        "region_name": env_str("AWS_S3_REGION_NAME") or None,
        "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
        "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
        "addressing_style": env_str("AWS_S3_ADDRESSING_STYLE") or None,  # path: MinIO
        "location": env_str("AWS_LOCATION"),  # a key prefix inside the bucket
        "file_overwrite": True,  # a rewritten session file keeps its key
        "default_acl": None,  # private: files reach users only through the portal
    }


# Session files, videos and checkpoints go through Django's storage (webapp/storage.py):
# files under MEDIA_ROOT (STORAGE=local), or S3-compatible object storage (STORAGE=s3)
# that every daphne and worker machine shares.
STORAGE = env_str("STORAGE", "local")
if STORAGE == "local":
    FILE_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif STORAGE == "s3":
    FILE_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": s3_storage_options(),
    }
else:
    raise ImproperlyConfigured(f"STORAGE={STORAGE!r} is not a storage (local or s3)")
STORAGES = {
    "default": FILE_STORAGE,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# local read-only copies of stored objects, for h5py and torch (STORAGE=s3)
STORAGE_CACHE_DIR = Path(env_str("STORAGE_CACHE_DIR", str(VAR_DIR / "storage-cache")))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "webapp.accounts",
    "webapp.recordings",
    "webapp.jobs",
    "webapp.registry",
    "webapp.live",
    "webapp.protocols",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
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

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # several processes share the file in embedded mode: wait for locks, don't fail
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "sessions"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
# daphne serves static files itself unless a reverse proxy does (SERVE_STATIC=false)
SERVE_STATIC = env_bool("SERVE_STATIC", True)

# ------------------------------------------------------------------ security
# TLS=true when the portal is served over HTTPS (TLS ends at the reverse proxy, which
# sets X-Forwarded-Proto): cookies only over HTTPS, HSTS, and http:// redirected.
TLS = env_bool("TLS", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", TLS or not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
if TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    # false when other hosts under the same domain still serve plain http
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
# Login attempts: after LOGIN_MAX_ATTEMPTS wrong passwords for one username from one
# address, that pair is locked out for LOGIN_LOCKOUT_S (counted in the database, so
# every daphne process sees the same count).
LOGIN_MAX_ATTEMPTS = env_int("LOGIN_MAX_ATTEMPTS", 5)
LOGIN_LOCKOUT_S = env_int("LOGIN_LOCKOUT_S", 15 * 60)
# the largest form body (not file uploads, which agents stream) a request may carry
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("FORM_MAX_KB", 2560) * 1024

# ------------------------------------------------------------------ realtime and jobs
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000, "expiry": 30},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    # A job whose whole worker died (SIGKILL, machine lost) stays unacknowledged in
    # Redis; after this long Redis hands it to another worker. Keep it above the
    # longest labeling job and above JOB_STALE_AFTER_S (a training run outlasting it
    # is safe: the second copy waits while the first worker reports progress).
    BROKER_VISIBILITY_TIMEOUT_S = env_int("CELERY_VISIBILITY_TIMEOUT_S", 3600)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": BROKER_VISIBILITY_TIMEOUT_S,
        # look for such jobs every tenth of it (kombu's default is every 100 s)
        "unacked_restore_interval": max(1, min(60, BROKER_VISIBILITY_TIMEOUT_S // 10)),
        "unacked_restore_throttle": 1,
    }
else:
    # One daphne process in embedded mode, so an in-process layer reaches every tab.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = None
    for folder in ("queue", "processed", "control"):  # kombu expects them to exist
        (VAR_DIR / "celery" / folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Jobs run for minutes to hours: a worker takes one at a time and acknowledges it
# only when done, and a worker process that dies mid-job (SIGKILL, OOM) hands the job
# back to the broker, so another worker picks it up.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "webapp.recordings.tasks.*": {"queue": "default"},
    "webapp.jobs.tasks.label_session": {"queue": "labeling"},
    "webapp.registry.tasks.train_model": {"queue": "training"},
}
# a running job that reports no progress for this long is marked failed (a training
# run: interrupted, to resume)
JOB_STALE_AFTER_S = env_int("JOB_STALE_AFTER_S", 600)
# every Celery worker writes its row of the portal's worker list this often; a worker
# not seen for WORKER_OFFLINE_AFTER_S shows as offline
WORKER_HEARTBEAT_S = env_int("WORKER_HEARTBEAT_S", 10)
WORKER_OFFLINE_AFTER_S = env_int("WORKER_OFFLINE_AFTER_S", 30)
# Live chunks per second one server process asks of all its agents whose live hand is
# watched (40 ms chunks: 25 a second each); past it, each is asked for longer chunks,
# up to recording's 200 ms: a crowd of live hands costs latency, not recording. Every
# chunk also goes to an inference shard: keep (daphne processes x this) within what
# the shards handle (~250 chunks/s per shard on the 2-core reference VM).
LIVE_CHUNKS_PER_S = env_int("LIVE_CHUNKS_PER_S", 125)
# a worker silent this long is retired: its row leaves the list when another starts
WORKER_FORGET_AFTER_DAYS = env_int("WORKER_FORGET_AFTER_DAYS", 7)
# Time limits per task type: past the soft limit the job ends with a message; the
# hard limit (a grace period later) kills a job that ignores it.
# a training run is stopped after this long (it can resume from its last epoch)
TRAINING_TIME_LIMIT_S = env_int("TRAINING_TIME_LIMIT_S", 24 * 3600)
LABELING_TIME_LIMIT_S = env_int("LABELING_TIME_LIMIT_S", 3600)
ASSEMBLY_TIME_LIMIT_S = env_int("ASSEMBLY_TIME_LIMIT_S", 600)  # session files
TIME_LIMIT_GRACE_S = env_int("TIME_LIMIT_GRACE_S", 120)
# processes of one training run, DistributedDataParallel when 2 or more; 0: one per
# GPU of the training worker's machine
TRAINING_PROCESSES = env_int("TRAINING_PROCESSES", 0)
MANO_MODEL_DIR = env_str("MANO_MODEL_DIR")  # holds mano/MANO_RIGHT.pkl, if supplied

# ------------------------------------------------------------------ ingest
AGENT_STALE_AFTER_S = env_int("AGENT_STALE_AFTER_S", 30)
# the largest --save-video file an agent may upload on request (413 above it)
VIDEO_UPLOAD_MAX_MB = env_int("VIDEO_UPLOAD_MAX_MB", 2048)

# ------------------------------------------------------------------ live inference
# Live poses are computed by inference workers listening on channels inference-0 ..
# inference-<INFERENCE_SHARDS - 1>; a session always goes to the same one (its id
# modulo the shards), which holds its predictors' state. Production runs one
# `manage.py runworker inference-<k>` per shard. The embedded mode's in-process
# channel layer reaches no other process, so daphne runs the worker itself.
INFERENCE_SHARDS = env_int("INFERENCE_SHARDS", 1)
if INFERENCE_SHARDS < 1:
    raise ImproperlyConfigured(f"INFERENCE_SHARDS={INFERENCE_SHARDS} must be 1 or more")
INFERENCE_IN_PROCESS = env_bool("INFERENCE_IN_PROCESS", not REDIS_URL)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}
