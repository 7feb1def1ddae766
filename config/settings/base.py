"""Settings shared by every environment."""

from __future__ import annotations

import os
from pathlib import Path

import environ

from config import embedded
from config.redis_urls import RedisLocation

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

VAR_DIR = embedded.var_dir(BASE_DIR)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "django_celery_beat",
    "guardian",
    "accounts",
    "memory",
    "tools",
    "automation",
    "agents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.RequestContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.organizations",
            ],
        },
    },
]

# --- Database: PostgreSQL only --------------------------------------------------
if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
else:
    embedded.postgres_url(VAR_DIR)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            # STAFFER_DB_NAME points worker processes started by tests at the test database.
            "NAME": env("STAFFER_DB_NAME", default=embedded.DATABASE_NAME),
            "USER": "postgres",
            "HOST": str(VAR_DIR / "pg"),
        }
    }
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("TEST", {})
DATABASES["default"]["TEST"]["NAME"] = env("STAFFER_TEST_DB", default="test_staffer")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, cache, channel layer ------------------------------------------
REDIS_URL = env("REDIS_URL", default="") or f"unix://{embedded.redis_start(VAR_DIR)}"
REDIS = RedisLocation(REDIS_URL, base=env.int("STAFFER_REDIS_DB_BASE", default=0))

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS.cache_url(),
    }
}

# channels-redis's Pub/Sub layer: a process subscribes to the groups its sockets joined and Redis pushes each
# message to it. The list-based RedisChannelLayer pops one message per four Redis round trips in one loop per
# process; bench/streaming.py measured it falling seconds behind at 200 sockets x 2 events/s (p50 1.9-8 s),
# where Pub/Sub stays at a few milliseconds (p50 3.5 ms). Group membership lives in the process, so a crash
# leaves no stale members. Delivery is at most once either way: pages replay from PostgreSQL. Pub/Sub
# channels ignore the database number, hence a prefix per STAFFER_REDIS_DB_BASE for parallel runs.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [REDIS.channels_host()],
            "prefix": f"asgi{REDIS.base}",
        },
    }
}

# --- Auth ------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None

INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)

# --- I18N ------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# --- API ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.api.throttling.UserOrApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env("THROTTLE_RATE_USER", default="2000/hour"),
        "apikey": env("THROTTLE_RATE_APIKEY", default="5000/hour"),
        "anon": env("THROTTLE_RATE_ANON", default="100/hour"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "accounts.api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Staffer API",
    "DESCRIPTION": "Tasks, workflows, approvals, tools and business memory for an organization.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "automation.models.tasks.TaskStatus",
        "TaskRunStatusEnum": "automation.models.tasks.RunStatus",
        "ScheduleKindEnum": "automation.models.schedules.ScheduleKind",
        "TriggerKindEnum": "automation.models.schedules.TriggerKind",
        "ApprovalStatusEnum": "accounts.models.approvals.ApprovalStatus",
        "MemoryCategoryEnum": "memory.models.Category",
        "MemoryEntityKindEnum": "memory.models.EntityKind",
        "MemoryRelationshipKindEnum": "memory.models.RelationshipKind",
        "AgentRoleEnum": "agents.models.llm.AgentRole",
        "LLMCallOutcomeEnum": "agents.models.llm.CallOutcome",
        "LLMLocalityEnum": "agents.models.llm.Locality",
        "InboundStatusEnum": "automation.email_in.models.InboundStatus",
        "InboundChannelEnum": "automation.email_in.models.InboundChannel",
        "QuarantineReasonEnum": "automation.email_in.models.QuarantineReason",
        "NotificationKindEnum": "automation.notifications.models.NotificationKind",
        "NotificationEmailModeEnum": "automation.notifications.models.EmailMode",
        "MemberRoleEnum": ["owner", "admin", "manager", "member", "viewer"],
        "MessageRoleEnum": "agents.models.conversations.MessageRole",
        "PlanStepRoleEnum": ["employee", "human"],
    },
}

# --- Automation engine (each value is explained in automation/conf.py) ----------------
AUTOMATION_LEASE_SECONDS = env.float("AUTOMATION_LEASE_SECONDS", default=30)
AUTOMATION_RECONCILE_SECONDS = env.float("AUTOMATION_RECONCILE_SECONDS", default=2)
AUTOMATION_REDISPATCH_SECONDS = env.float("AUTOMATION_REDISPATCH_SECONDS", default=15)
AUTOMATION_RUN_TIMEOUT_SECONDS = env.float("AUTOMATION_RUN_TIMEOUT_SECONDS", default=300)
AUTOMATION_RETRY_BASE_SECONDS = env.float("AUTOMATION_RETRY_BASE_SECONDS", default=2)
AUTOMATION_RETRY_CAP_SECONDS = env.float("AUTOMATION_RETRY_CAP_SECONDS", default=300)
AUTOMATION_ORG_CONCURRENCY = env.int("AUTOMATION_ORG_CONCURRENCY", default=10)
AUTOMATION_PRIORITY_AGING_SECONDS = env.float("AUTOMATION_PRIORITY_AGING_SECONDS", default=30)
AUTOMATION_BREAKER_THRESHOLD = env.int("AUTOMATION_BREAKER_THRESHOLD", default=5)
AUTOMATION_BREAKER_COOLDOWN_SECONDS = env.float("AUTOMATION_BREAKER_COOLDOWN_SECONDS", default=30)

# --- Business memory (each value is explained in memory/conf.py) ----------------------
MEMORY_EMBEDDING_MODEL = env("MEMORY_EMBEDDING_MODEL", default="all-MiniLM-L6-v2")
MEMORY_EMBEDDING_THREADS = env.int("MEMORY_EMBEDDING_THREADS", default=1)
MEMORY_EXACT_SEARCH_MAX_ROWS = env.int("MEMORY_EXACT_SEARCH_MAX_ROWS", default=20000)
MEMORY_HNSW_EF_SEARCH = env.int("MEMORY_HNSW_EF_SEARCH", default=200)
MEMORY_DEFAULT_EXPIRY_DAYS = env.int("MEMORY_DEFAULT_EXPIRY_DAYS", default=180)

# --- LLM gateway (each value is explained in agents/llm/conf.py) -----------------------
# No deployment configured: the offline scripted model answers, labelled as such.
LLM_DEPLOYMENTS = env.json("LLM_DEPLOYMENTS", default={})
LLM_TIERS = env.json("LLM_TIERS", default={})
LLM_HYBRID_MODE = env.bool("LLM_HYBRID_MODE", default=False)
LLM_USER_CALLS_PER_HOUR = env.int("LLM_USER_CALLS_PER_HOUR", default=50)
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=60)
LLM_NUM_RETRIES = env.int("LLM_NUM_RETRIES", default=3)
LLM_CURRENCY = "USD"
# How late a scheduled run may be and still count as on time (missed-run policy "skip").
SCHEDULE_GRACE_SECONDS = env.float("SCHEDULE_GRACE_SECONDS", default=300)

# Functions called with the demo organization by `manage.py seed_demo`.
DEMO_SEED_HOOKS = ["automation.workflow_templates.seed_demo", "automation.onboarding_demo.seed_demo"]

# --- Email: the SMTP server Django's SMTP backend talks to (each environment picks EMAIL_BACKEND) ---------
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="webmaster@localhost")

# --- Email in and notifications (each value is explained in automation/email_in/conf.py) ---------
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
INBOUND_EMAIL_DOMAIN = env("INBOUND_EMAIL_DOMAIN", default="inbound.localhost")
INBOUND_EMAIL_SPOOL_DIR = env("INBOUND_EMAIL_SPOOL_DIR", default=str(VAR_DIR / "mail-spool"))
INBOUND_EMAIL_MAX_BYTES = env.int("INBOUND_EMAIL_MAX_BYTES", default=10 * 1024 * 1024)
INBOUND_SMTP_MAX_BYTES = env.int("INBOUND_SMTP_MAX_BYTES", default=25 * 1024 * 1024)
INBOUND_SMTP_HOST = env("INBOUND_SMTP_HOST", default="127.0.0.1")
INBOUND_SMTP_PORT = env.int("INBOUND_SMTP_PORT", default=2525)
# Providers' inbound webhooks (/api/v1/hooks/email/<provider>/inbound/) stay off (503) until secured.
ANYMAIL = {
    "WEBHOOK_SECRET": env("ANYMAIL_WEBHOOK_SECRET", default=""),  # "user:password" basic auth: SendGrid, Postmark
    "MAILGUN_WEBHOOK_SIGNING_KEY": env("MAILGUN_WEBHOOK_SIGNING_KEY", default=""),
}
NOTIFICATIONS_DIGEST_HOUR = env.int("NOTIFICATIONS_DIGEST_HOUR", default=8)
NOTIFICATIONS_DUE_SOON_HOURS = env.float("NOTIFICATIONS_DUE_SOON_HOURS", default=24)
# Extra processes `manage.py runstack` starts with web, worker and beat: {name: manage.py arguments}.
RUNSTACK_EXTRA_PROCESSES = {
    "smtp": ["smtp_receiver", "--host", INBOUND_SMTP_HOST, "--port", str(INBOUND_SMTP_PORT)],
}

# --- Integrations -------------------------------------------------------------------------
# Providers' API base URLs ({"bamboohr": "https://…"}); STAFFER_<PROVIDER>_BASE_URL also works.
TOOLS_INTEGRATION_URLS: dict[str, str] = {}
# The local HRIS stand-in (tools/standins/bamboohr.py) for development and the offline demo:
# off here and in production; config/settings/local.py turns it on (STAFFER_DEMO_HRIS=0 turns it off).
DEMO_HRIS = env.bool("STAFFER_DEMO_HRIS", default=False)
DEMO_HRIS_HOST = env("STAFFER_DEMO_HRIS_HOST", default="127.0.0.1")
DEMO_HRIS_PORT = env.int("STAFFER_DEMO_HRIS_PORT", default=8026)
DEMO_HRIS_API_KEY = env("STAFFER_DEMO_HRIS_API_KEY", default="demo-hris-key")
DEMO_HRIS_COMPANY = "acme-demo"
DEMO_HRIS_DATA = VAR_DIR / "hris-standin" / "employees.json"

# --- Celery -------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="") or REDIS.broker_url()
CELERY_RESULT_BACKEND = REDIS.result_backend_url()
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redelivery of unacknowledged messages after a whole worker dies. Work is
# recovered sooner by the reconciler (PostgreSQL is the record: leases of
# AUTOMATION_LEASE_SECONDS), so this only bounds the broker's own restore. It
# is set just above the hard time limit of one attempt (run timeout + 60 s):
# a healthy long attempt is never redelivered while it runs, and a message
# lost with its worker still comes back within minutes if the reconciler is
# down. Tasks never use long ETAs (delayed retries live in PostgreSQL).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(AUTOMATION_RUN_TIMEOUT_SECONDS) + 90}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Loaded in the background by each worker process as it starts (config/warmup.py), so the first
# chat plan or memory search does not wait for them.
WORKER_WARMUPS = env.list("STAFFER_WORKER_WARMUPS", default=[
    "memory.embeddings.warm",
    "agents.llm.router.litellm_module",
])
WORKER_HEARTBEAT_SECONDS = 10
WORKER_HEARTBEAT_TTL = 30

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"LiteLLM": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}
