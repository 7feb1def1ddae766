"""Integration credentials: create, rotate, delete, decrypt for a tool, re-encrypt.

SECURITY: the plaintext of a credential is accepted by ``credential_create`` /
``credential_rotate`` and returned only by ``credential_secret`` (to a tool
handler through ``ToolContext.credential``). Audit events record the
provider, name and key id, never the secret.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import Conflict, InvalidInput, NotFound
from accounts.models import Organization, User
from accounts.services.audit import audit_record
from tools.crypto import CredentialDecryptError, Sealed, keyring
from tools.errors import ToolFailed
from tools.models import IntegrationCredential

# The fields each provider's secret carries (the first is the one the hint shows).
PROVIDER_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # provider: (required fields, optional fields)
    "slack": (("webhook_url",), ()),
    "github": (("token",), ()),
    "bamboohr": (("api_key", "company_domain"), ()),
    "stripe": (("secret_key",), ()),
    "http": (("authorization",), ()),
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
MAX_SECRET = 8192


def _associated_data(*, organization_id: int, provider: str, name: str) -> bytes:
    return f"staffer-credential:v1:{organization_id}:{provider}:{name}".encode()


def _validate_secret(provider: str, secret: Any) -> dict[str, str]:
    if provider not in PROVIDER_FIELDS:
        raise InvalidInput(
            f"unknown provider {provider!r}; choose one of {', '.join(sorted(PROVIDER_FIELDS))}", field="provider"
        )
    if not isinstance(secret, dict):
        raise InvalidInput("the secret is an object of fields", field="secret")
    required, optional = PROVIDER_FIELDS[provider]
    missing = [f for f in required if not isinstance(secret.get(f), str) or not secret.get(f, "").strip()]
    if missing:
        raise InvalidInput(f"the {provider} secret needs: {', '.join(missing)}", field="secret")
    unknown = sorted(set(secret) - set(required) - set(optional))
    if unknown:
        raise InvalidInput(f"unknown fields for {provider}: {', '.join(unknown)}", field="secret")
    cleaned = {k: secret[k].strip() for k in (*required, *optional) if k in secret}
    if len(json.dumps(cleaned)) > MAX_SECRET:
        raise InvalidInput("the secret is too large", field="secret")
    return cleaned


def _hint(provider: str, secret: dict[str, str]) -> str:
    first = secret[PROVIDER_FIELDS[provider][0][0]]
    return f"…{first[-4:]}" if len(first) >= 12 else "…"


def _seal(credential: IntegrationCredential, secret: dict[str, str]) -> None:
    sealed = keyring().encrypt(
        json.dumps(secret, sort_keys=True).encode(),
        associated_data=_associated_data(
            organization_id=credential.organization_id, provider=credential.provider, name=credential.name
        ),
    )
    credential.key_id = sealed.key_id
    credential.nonce = sealed.nonce
    credential.ciphertext = sealed.ciphertext


def _open(credential: IntegrationCredential) -> dict[str, str]:
    plaintext = keyring().decrypt(
        Sealed(key_id=credential.key_id, nonce=bytes(credential.nonce), ciphertext=bytes(credential.ciphertext)),
        associated_data=_associated_data(
            organization_id=credential.organization_id, provider=credential.provider, name=credential.name
        ),
    )
    return json.loads(plaintext)


def credential_create(
    *, organization: Organization, actor: User, provider: str, secret: dict[str, Any], name: str = "default"
) -> IntegrationCredential:
    """Store a new credential, encrypted under the primary key."""
    name = (name or "default").strip()
    if not _NAME.match(name):
        raise InvalidInput("a name is lowercase letters, digits, '-' or '_'", field="name")
    cleaned = _validate_secret(provider, secret)
    credential = IntegrationCredential(organization=organization, provider=provider, name=name, created_by=actor)
    credential.hint = _hint(provider, cleaned)
    _seal(credential, cleaned)
    try:
        with transaction.atomic():
            credential.save()
            audit_record(
                organization=organization,
                actor=actor,
                action="credential.created",
                target=credential,
                after={"provider": provider, "name": name, "key_id": credential.key_id},
            )
    except IntegrityError as exc:
        raise Conflict(f"a {provider} credential named {name!r} exists; rotate it instead", field="name") from exc
    return credential


def credential_rotate(
    *, credential: IntegrationCredential, actor: User, secret: dict[str, Any]
) -> IntegrationCredential:
    """Replace the secret of ``credential`` (a new token from the provider)."""
    cleaned = _validate_secret(credential.provider, secret)
    with transaction.atomic():
        locked = IntegrationCredential.objects.for_org(credential.organization).select_for_update().get(
            pk=credential.pk
        )
        locked.hint = _hint(locked.provider, cleaned)
        _seal(locked, cleaned)
        locked.rotated_at = timezone.now()
        locked.save(update_fields=["hint", "key_id", "nonce", "ciphertext", "rotated_at"])
        audit_record(
            organization=locked.organization,
            actor=actor,
            action="credential.rotated",
            target=locked,
            after={"provider": locked.provider, "name": locked.name, "key_id": locked.key_id},
        )
    return locked


def credential_delete(*, credential: IntegrationCredential, actor: User) -> None:
    with transaction.atomic():
        audit_record(
            organization=credential.organization,
            actor=actor,
            action="credential.deleted",
            target=credential,
            before={"provider": credential.provider, "name": credential.name},
        )
        credential.delete()


def credential_secret(*, organization: Organization, provider: str, name: str = "default") -> dict[str, str]:
    """The plaintext secret, for a tool handler only."""
    credential = IntegrationCredential.objects.for_org(organization).filter(provider=provider, name=name).first()
    if credential is None:
        raise ToolFailed(f"no {provider} credential named {name!r} is configured", code="credential_missing")
    try:
        return _open(credential)
    except CredentialDecryptError as exc:
        raise ToolFailed(f"the {provider} credential cannot be decrypted", code="credential_unreadable") from exc


def credential_get(*, organization: Organization, pk: int) -> IntegrationCredential:
    credential = IntegrationCredential.objects.for_org(organization).filter(pk=pk).first()
    if credential is None:
        raise NotFound("Not found.")
    return credential


@dataclass(frozen=True)
class ReencryptResult:
    reencrypted: int
    already_current: int
    failed: list[int]


def credentials_reencrypt(*, all_rows: bool = False, batch: int = 200) -> ReencryptResult:
    """System job: re-encrypt every credential not under the primary key (or all of them).

    Every organization's rows, deliberately (a key rotation is system-wide).
    """
    ring = keyring()
    done = current = 0
    failed: list[int] = []
    queryset = IntegrationCredential.objects.dangerously_unscoped().order_by("pk")
    if not all_rows:
        queryset = queryset.exclude(key_id=ring.primary)
    current = IntegrationCredential.objects.dangerously_unscoped().filter(key_id=ring.primary).count()
    last_pk = 0
    while True:
        rows = list(queryset.filter(pk__gt=last_pk).values_list("pk", flat=True)[:batch])
        if not rows:
            break
        for pk in rows:
            last_pk = pk
            with transaction.atomic():
                credential = IntegrationCredential.objects.dangerously_unscoped().select_for_update().get(pk=pk)
                try:
                    secret = _open(credential)
                except CredentialDecryptError:
                    failed.append(pk)
                    continue
                old_key = credential.key_id
                _seal(credential, secret)
                credential.save(update_fields=["key_id", "nonce", "ciphertext"])
                audit_record(
                    organization=credential.organization,
                    actor=None,
                    action="credential.reencrypted",
                    target=credential,
                    before={"key_id": old_key},
                    after={"key_id": credential.key_id},
                )
                done += 1
    if all_rows:
        current = 0
    return ReencryptResult(reencrypted=done, already_current=current, failed=failed)
