"""Development: the embedded servers, DEBUG on, a fixed development key."""

from .base import *  # noqa: F403
from .base import DEMO_HRIS_HOST, DEMO_HRIS_PORT, RUNSTACK_EXTRA_PROCESSES, TOOLS_INTEGRATION_URLS, env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me-0123456789abcdefghijklmnop")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")

# The demo's HRIS: the BambooHR integration talks to the local stand-in `runstack` starts,
# unless STAFFER_BAMBOOHR_BASE_URL points at a real (or sandbox) BambooHR.
DEMO_HRIS = env.bool("STAFFER_DEMO_HRIS", default=True)
if DEMO_HRIS:
    RUNSTACK_EXTRA_PROCESSES = {**RUNSTACK_EXTRA_PROCESSES, "hris": ["hris_standin"]}
    if not env("STAFFER_BAMBOOHR_BASE_URL", default=""):
        TOOLS_INTEGRATION_URLS = {**TOOLS_INTEGRATION_URLS, "bamboohr": f"http://{DEMO_HRIS_HOST}:{DEMO_HRIS_PORT}"}
