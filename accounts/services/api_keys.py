from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import ApiKey, Membership, Organization, User
from accounts.roles import Scope
from accounts.services.audit import audit_record
from accounts.services.tokens import hash_secret, new_secret

KEY_PREFIX = "stf_"


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    secret: str  # shown once


def api_key_create(
    *,
    organization: Organization,
    actor: User,
    name: str,
    scopes: Iterable[str],
    limit_to: Collection[str] | None = None,
) -> IssuedApiKey:
    """Issue a key carrying ``scopes`` (never more than the creator's own).

    ``limit_to`` caps the scopes further: a key made with another API key
    carries no scope that the calling key lacks.
    """
    name = name.strip()
    if not name:
        raise InvalidInput("a name is required", field="name")
    requested = sorted(set(scopes))
    if not requested:
        raise InvalidInput("choose at least one scope", field="scopes")
    unknown = [s for s in requested if s not in Scope.all()]
    if unknown:
        raise InvalidInput(f"unknown scopes: {', '.join(unknown)}", field="scopes")
    membership = Membership.objects.for_org(organization).get(user=actor)
    allowed = membership.scopes if limit_to is None else membership.scopes & frozenset(limit_to)
    beyond = [s for s in requested if s not in allowed]
    if beyond:
        raise InvalidInput(f"you cannot give a key scopes you lack: {', '.join(beyond)}", field="scopes")
    public = new_secret(6)[:8]
    secret = f"{KEY_PREFIX}{public}_{new_secret()}"
    with transaction.atomic():
        api_key = ApiKey.objects.for_org(organization).create(
            organization=organization,
            name=name,
            prefix=public,
            key_hash=hash_secret(secret),
            scopes=requested,
            created_by=actor,
        )
        audit_record(
            organization=organization,
            actor=actor,
            action="apikey.created",
            target=api_key,
            after={"name": name, "scopes": requested, "prefix": public},
        )
    return IssuedApiKey(api_key=api_key, secret=secret)


def api_key_revoke(*, api_key: ApiKey, actor: User) -> ApiKey:
    if api_key.revoked_at is not None:
        return api_key
    with transaction.atomic():
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(organization=api_key.organization, actor=actor, action="apikey.revoked", target=api_key)
    return api_key


def api_key_authenticate(secret: str) -> ApiKey | None:
    """Find the active key for ``secret`` and stamp its last use (at most once a minute)."""
    if not secret.startswith(KEY_PREFIX):
        return None
    # A key works only while its creator still belongs to the key's organization.
    creator_is_member = Exists(
        Membership.objects.dangerously_unscoped().filter(
            organization_id=OuterRef("organization_id"), user_id=OuterRef("created_by_id")
        )
    )
    api_key = (
        ApiKey.objects.dangerously_unscoped()  # the secret itself names the organization
        .select_related("organization", "created_by")
        .filter(creator_is_member, key_hash=hash_secret(secret), revoked_at__isnull=True)
        .first()
    )
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.expires_at is not None and api_key.expires_at <= now:
        return None
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.dangerously_unscoped().filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
