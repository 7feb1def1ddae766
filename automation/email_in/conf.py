"""Email-in tunables, read from Django settings with safe defaults.

``INBOUND_EMAIL_DOMAIN``: the domain of every inbound address.
``INBOUND_EMAIL_LOCAL_PART``: the local part before ``+`` (``tasks``).
``INBOUND_EMAIL_MAX_BYTES``: larger messages are accepted but quarantined (10 MiB).
``INBOUND_SMTP_MAX_BYTES``: larger messages are refused by the SMTP receiver with 552 (25 MiB).
``INBOUND_EMAIL_MAX_ATTACHMENT_BYTES``: one attachment (10 MiB); ``INBOUND_EMAIL_MAX_ATTACHMENTS`` (20).
``INBOUND_EMAIL_ALLOWED_ATTACHMENT_TYPES``: MIME types (``type/*`` allowed) an attachment may have.
``INBOUND_EMAIL_SPOOL_DIR``: where accepted mail waits until it is processed.
``INBOUND_EMAIL_PROCESS_TIMEOUT``: how long an SMTP session waits for its message's processing (s).
``INBOUND_EMAIL_SPOOL_RETRY_SECONDS``: how often the receiver retries what is left in the spool.
``SITE_URL``: absolute links in emails.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

DEFAULT_ALLOWED_TYPES = (
    "text/plain", "text/csv", "text/calendar", "text/markdown",
    "image/png", "image/jpeg", "image/gif", "image/webp",
    "application/pdf", "application/json",
    "application/msword", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint", "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "message/rfc822",
)

# Refused whatever type the sender declared: names that run code when opened.
FORBIDDEN_EXTENSIONS = frozenset({
    "exe", "com", "bat", "cmd", "scr", "pif", "msi", "msp", "dll", "cpl", "js", "jse", "vbs", "vbe", "wsf", "wsh",
    "ps1", "psm1", "hta", "jar", "lnk", "reg", "sh", "iso", "img", "vhd", "docm", "xlsm", "pptm", "apk", "app",
})


def domain() -> str:
    return str(getattr(settings, "INBOUND_EMAIL_DOMAIN", "inbound.localhost")).strip().lower()


def local_part() -> str:
    return str(getattr(settings, "INBOUND_EMAIL_LOCAL_PART", "tasks")).strip().lower()


def max_message_bytes() -> int:
    return int(getattr(settings, "INBOUND_EMAIL_MAX_BYTES", 10 * 1024 * 1024))


def smtp_max_bytes() -> int:
    return int(getattr(settings, "INBOUND_SMTP_MAX_BYTES", 25 * 1024 * 1024))


def max_attachment_bytes() -> int:
    return int(getattr(settings, "INBOUND_EMAIL_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024))


def max_attachments() -> int:
    return int(getattr(settings, "INBOUND_EMAIL_MAX_ATTACHMENTS", 20))


def allowed_attachment_types() -> tuple[str, ...]:
    return tuple(t.lower() for t in getattr(settings, "INBOUND_EMAIL_ALLOWED_ATTACHMENT_TYPES", DEFAULT_ALLOWED_TYPES))


def spool_dir() -> Path:
    default = Path(settings.VAR_DIR) / "mail-spool"
    return Path(getattr(settings, "INBOUND_EMAIL_SPOOL_DIR", default))


def process_timeout() -> float:
    return float(getattr(settings, "INBOUND_EMAIL_PROCESS_TIMEOUT", 30))


def spool_retry_seconds() -> float:
    return float(getattr(settings, "INBOUND_EMAIL_SPOOL_RETRY_SECONDS", 30))


def site_url() -> str:
    return str(getattr(settings, "SITE_URL", "http://127.0.0.1:8000")).rstrip("/")


def task_link(*, org_slug: str, task_id: int) -> str:
    """The absolute link of a task's page."""
    return f"{site_url()}/orgs/{org_slug}/tasks/{task_id}/"
