"""Tests: the same embedded servers, on their own database and Redis databases."""

import os

os.environ.setdefault("STAFFER_REDIS_DB_BASE", "8")

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, env

DEBUG = False
SECRET_KEY = "test-only-key-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"  # noqa: S105
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Mail stays in memory; a test that starts a worker process against a local SMTP sink sets this variable.
EMAIL_BACKEND = env("STAFFER_TEST_EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"user": "100000/hour", "apikey": "100000/hour", "anon": "100000/hour"},
}
# Test workers start cold (the suite's timing stays as it was); tests/platform/test_warmup.py sets its own.
WORKER_WARMUPS = env.list("STAFFER_WORKER_WARMUPS", default=[])
