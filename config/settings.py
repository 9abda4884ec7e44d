"""Settings for the billing platform, driven by environment variables.

With nothing set the platform runs on its embedded default: SQLite in WAL mode, tasks in
process, debug on. ``DJANGO_DEBUG=0`` switches to production, which requires a secret key,
allowed hosts, the field encryption key, PostgreSQL (``DATABASE_URL``) and Redis
(``REDIS_URL``), and turns on the transport security settings. Production never falls back to
the embedded default: that would be one process on a SQLite file, running tasks inside web
requests, with caches and throttles that each process keeps to itself.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp import constants as csp_constants

from config.env import (
    env_bool,
    env_int,
    env_list,
    env_str,
    require,
    require_list,
    require_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("BARS_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", True)
PRODUCTION = not DEBUG

# Development keys are fixed and public: they exist so a fresh checkout runs with no setup.
# Production refuses to start without its own.
_DEV_SECRET_KEY = "dev-only-insecure-key-3c9f1e8a7b6d5c4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c"  # noqa: S105
_DEV_FIELD_KEY = "ZGV2LW9ubHktZmllbGQta2V5LW5vdC1mb3ItdXNlLSE="

if PRODUCTION:
    SECRET_KEY = require("DJANGO_SECRET_KEY", "production signs sessions and tokens with it")
    FIELD_ENCRYPTION_KEYS = require_list(
        "DJANGO_FIELD_ENCRYPTION_KEY", "identity and phone numbers are stored encrypted"
    )
    ALLOWED_HOSTS = require_list(
        "DJANGO_ALLOWED_HOSTS", "the host names this site answers to, comma-separated"
    )
else:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY", _DEV_SECRET_KEY)
    FIELD_ENCRYPTION_KEYS = env_list("DJANGO_FIELD_ENCRYPTION_KEY", [_DEV_FIELD_KEY])
    ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "pgtrigger",
    "django_htmx",
    "tenancy",
    "customers",
    "ledger",
    "metering",
    "gateway_bridge",
    "verification",
    "billing",
    "collection",
    "inspection",
    "console",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenancy.middleware.RequestMetaMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "tenancy.second_factor.SecondFactorMiddleware",
    "tenancy.middleware.TenantMiddleware",
    "tenancy.middleware.LazyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "tenancy.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context.console",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------

if PRODUCTION:
    DATABASE_URL = require_url(
        "DATABASE_URL",
        ("postgres", "postgresql", "pgsql"),
        "production runs on PostgreSQL (row locks, triggers, many processes), not on the demo's "
        "SQLite file",
    )
else:
    DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    # Production's processes (gunicorn's sync workers, Celery's) each keep their connection for
    # a minute. The demo's development server runs each HTTP connection on a thread of its own,
    # and a kept connection outlived its thread: after about 3,000 requests it held 88 of the
    # server's 100 connections. There, each request closes its connection.
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60 if PRODUCTION else 0)
    }
    # A statement prepared by tenancy.prepared keeps the plan made the first time it ran on
    # the connection (the server would otherwise plan it again for its first five runs and then
    # whenever it guessed a custom plan cheaper). Only prepared statements and PL/pgSQL use it.
    if "postgresql" in DATABASES["default"]["ENGINE"]:
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
            "-c plan_cache_mode=force_generic_plan"
        )
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "bars.sqlite3",  # type: ignore[typeddict-item]  # a path is fine
            # WAL lets the poller write while the site reads; IMMEDIATE takes the write lock
            # when a transaction starts, so two writers queue instead of failing mid-way.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                ),
            },
        }
    }

# --- cache, broker, tasks ----------------------------------------------------------------

if PRODUCTION:
    REDIS_URL = require_url(
        "REDIS_URL",
        ("redis", "rediss"),
        "production sends tasks to the Celery workers and shares its cache and API throttles "
        "between processes through Redis",
    )
else:
    REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("BARS_CACHE_PREFIX", "bars"),
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://"
    # No broker: tasks run in the calling process, and the demo's scheduler runs the periodic
    # jobs (see tenancy.schedules).
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True

# A task whose worker dies unacknowledged goes back to the queue after this long (Redis); a
# polling round takes seconds, so ten minutes is safe. Tests shorten it.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("BARS_BROKER_VISIBILITY_TIMEOUT", 600),
    # Look for abandoned messages every few seconds (one cheap sorted-set query).
    "unacked_restore_interval": env_int("BARS_BROKER_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": 1,
}
# Long work a page watches (bill runs, period computations) counts as stalled after this many
# minutes without a committed chunk: the page says so, polls slowly and offers to start it again
# (it resumes where it stopped). Shorter than the visibility timeout, so people hear of a dead
# worker before the broker delivers its task again.
BARS_STALL_MINUTES = env_int("BARS_STALL_MINUTES", 5, minimum=1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# Gateways per polling task: each task polls its shard's buses concurrently in one event loop.
BARS_POLL_SHARD_SIZE = env_int("BARS_POLL_SHARD_SIZE", 500)

# --- auth, sessions, lockout --------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "tenancy.backends.StaffBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    # The similarity check above lets a name repeated to length through ("new1new1new1").
    {"NAME": "tenancy.passwords.UserNameInPasswordValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "login"

# Wrong passwords lock a user name from one address (5), one address (50) and a user name from
# every address (20), each for 30 minutes; an administrator can unlock (tenancy.lockout).
# New tenants require a second factor of staff who handle money in production (a tenant
# setting, tenancy.second_factor); the demo's tenants do not.
BARS_SECOND_FACTOR_DEFAULT = PRODUCTION

AXES_HANDLER = "tenancy.lockout.LoginLockoutHandler"
AXES_FAILURE_LIMIT = env_int("BARS_LOGIN_FAILURE_LIMIT", 5)
BARS_LOGIN_ADDRESS_FAILURE_LIMIT = env_int("BARS_LOGIN_ADDRESS_FAILURE_LIMIT", 50)
BARS_LOGIN_USERNAME_FAILURE_LIMIT = env_int("BARS_LOGIN_USERNAME_FAILURE_LIMIT", 20)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("BARS_LOGIN_LOCKOUT_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
AXES_IPWARE_PROXY_COUNT = env_int("BARS_TRUSTED_PROXY_COUNT", 0)
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

SESSION_COOKIE_AGE = env_int("BARS_SESSION_SECONDS", 8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SILENCED_SYSTEM_CHECKS: list[str] = []

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    # Subdomains and the browsers' preload list bind every host of the domain to HTTPS for
    # good: a deployer's decision, not a default (DJANGO_HSTS_PRELOAD=1 opts in to both).
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD
    if not SECURE_HSTS_PRELOAD:
        # check --deploy's reminders of the two: left out on purpose unless opted in.
        SILENCED_SYSTEM_CHECKS += ["security.W005", "security.W021"]
    CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Content-Security-Policy on every answer (django-csp): scripts only from this site, no
# plugins, no framing, forms post here only. Styles may be inline (the bill document's and the
# API docs' own); ReDoc runs its search in a worker made from a blob.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp_constants.SELF],
        "script-src": [csp_constants.SELF],
        "style-src": [csp_constants.SELF, csp_constants.UNSAFE_INLINE],
        "img-src": [csp_constants.SELF, "data:"],
        "font-src": [csp_constants.SELF, "data:"],
        "worker-src": [csp_constants.SELF, "blob:"],
        "connect-src": [csp_constants.SELF],
        "object-src": [csp_constants.NONE],
        "base-uri": [csp_constants.SELF],
        "form-action": [csp_constants.SELF],
        "frame-ancestors": [csp_constants.NONE],
    }
}

# Personal data (identity and phone numbers) is encrypted with these Fernet keys, newest first;
# search uses a keyed hash derived from the first key.
FIELD_ENCRYPTION_KEY = FIELD_ENCRYPTION_KEYS[0]
# The key of recharge cards' PIN hashes (HMAC-SHA256); unset, one is derived from the oldest
# field encryption key (``collection.services.vouchers.pin_key``). Changing it makes every
# card printed before unredeemable.
VOUCHER_PIN_KEY = env_str("DJANGO_VOUCHER_PIN_KEY", "")

# --- i18n, time ----------------------------------------------------------------------------

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
FORMAT_MODULE_PATH = ["config.formats"]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"

# --- static --------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("BARS_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(exist_ok=True)  # collectstatic fills it in production

DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("BARS_MAX_REQUEST_BYTES", 5 * 1024 * 1024)

# --- API -----------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenancy.authentication.ApiClientTokenAuthentication",
        "tenancy.authentication.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenancy.permissions.MatrixPermission"],
    "DEFAULT_PARSER_CLASSES": ["tenancy.api_plumbing.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "tenancy.api_plumbing.JSONFirstContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "tenancy.api_plumbing.IdCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["tenancy.api_plumbing.FilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "tenancy.schema.MatrixAutoSchema",
    "EXCEPTION_HANDLER": "config.errors.error_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "tenancy.api_plumbing.PrincipalRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "principal": env_str("BARS_THROTTLE_PRINCIPAL", "6000/min"),
        "anon": env_str("BARS_THROTTLE_ANON", "60/min"),
        # Searches by identity or mobile number, per staff user or API client, apart from the
        # budget above: a few a minute serve a counter and make guessing numbers hopeless.
        "pii_search": env_str("BARS_THROTTLE_PII_SEARCH", "5/min"),
    },
    "NUM_PROXIES": env_int("BARS_TRUSTED_PROXY_COUNT", 0),
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Utility billing platform API",
    "DESCRIPTION": (
        "Read, verify and collect (抄核收) for electricity and water utilities. Every request "
        "acts inside one tenant; objects of another tenant, or of a site outside the caller's "
        "grant, answer 404. Errors share one body: "
        '`{"error": {"code": …, "message": …, "fields": {…}}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.document_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "tenancy.roles.Role",
        "ActorKindEnum": "tenancy.models.ActorKind",
        "EstimateMethodEnum": "verification.models.EstimateMethod",
        "RequestableEstimateEnum": "verification.models.REQUESTABLE_ESTIMATES",
        "BillKindEnum": "billing.models.BillKind",
        "BillStateEnum": "billing.models.BillState",
        "ChannelEnum": "collection.models.Channel",
        "DepositChannelEnum": "collection.deposit_models.DEPOSIT_CHANNEL_CHOICES",
        "RefundChannelEnum": "collection.deposit_models.RefundChannel",
    },
}

# --- logging -------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_meta": {"()": "tenancy.context.RequestMetaLogFilter"},
        "client_errors": {"()": "config.log_filters.ClientErrorLogFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_meta"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("BARS_LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler (when DEBUG) would print each record a second time:
        # the root handler prints them all.
        "django": {"handlers": [], "level": "INFO"},
        # A 403 or 404 is one line, without the traceback of its PermissionDenied or Http404.
        "django.request": {"filters": ["client_errors"]},
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # Every Modbus failure is recorded as a meter event; pymodbus's own log would repeat it.
        "pymodbus": {"level": "CRITICAL"},
    },
}
