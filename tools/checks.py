"""System checks: the credential keyring is usable before anything is stored with it."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured


@register("security")
def credential_keys_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``STAFFER_CREDENTIAL_KEYS`` parses (or a development key is allowed here)."""
    from tools.crypto import keyring

    try:
        keyring()
    except ImproperlyConfigured as exc:
        return [Error(f"integration credentials cannot be stored or read: {exc}",
                      hint="set STAFFER_CREDENTIAL_KEYS (see deploy/env.example)", id="tools.E001")]
    return []
