"""Credentials: encrypted at rest with a key id, rotation and re-encryption, never shown."""

from __future__ import annotations

import base64
import io
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from accounts.errors import Conflict, InvalidInput
from accounts.models import AuditEvent
from tools.crypto import generate_key_spec, keyring, parse_keys
from tools.errors import ToolFailed
from tools.models import IntegrationCredential
from tools.services.credentials import (
    credential_create,
    credential_rotate,
    credential_secret,
    credentials_reencrypt,
)

pytestmark = pytest.mark.django_db

TOKEN = "ghp_0123456789abcdefSECRETTOKEN"


def _key(kid, byte):
    return f"{kid}:{base64.b64encode(bytes([byte]) * 32).decode()}"


def test_secret_is_encrypted_at_rest(tenant_a, settings):
    """The database row holds ciphertext under a key id; the token is nowhere in the row."""
    settings.STAFFER_CREDENTIAL_KEYS = _key("k1", 1)
    credential = credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="github",
                                   secret={"token": TOKEN})
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tools_integrationcredential WHERE id = %s", [credential.pk])
        row = cursor.fetchone()
    assert TOKEN.encode() not in b"".join(bytes(v) if isinstance(v, memoryview) else str(v).encode() for v in row)
    assert credential.key_id == "k1"
    assert credential.hint == "…OKEN"
    assert credential_secret(organization=tenant_a.organization, provider="github") == {"token": TOKEN}


def test_audit_and_repr_never_hold_the_secret(tenant_a, settings, caplog):
    """Creating and rotating write audit events without the secret; the model's repr has none either."""
    caplog.set_level(logging.DEBUG)
    credential = credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="github",
                                   secret={"token": TOKEN})
    credential_rotate(credential=credential, actor=tenant_a.admin, secret={"token": TOKEN + "2"})
    events = AuditEvent.objects.for_org(tenant_a.organization).filter(action__startswith="credential.")
    assert events.count() == 2
    for event in events:
        assert TOKEN not in str(event.after) + str(event.before)
    assert TOKEN not in repr(credential) + str(credential)
    assert TOKEN not in caplog.text


def test_a_row_moved_to_another_org_does_not_decrypt(tenants):
    """The organization is bound into the ciphertext: copying a row to another organization is useless."""
    a, b = tenants
    credential = credential_create(organization=a.organization, actor=a.admin, provider="github",
                                   secret={"token": TOKEN})
    IntegrationCredential.objects.for_org(b.organization).create(
        organization=b.organization, provider="github", name="default", key_id=credential.key_id,
        nonce=credential.nonce, ciphertext=credential.ciphertext,
    )
    with pytest.raises(ToolFailed) as refused:
        credential_secret(organization=b.organization, provider="github")
    assert refused.value.code == "credential_unreadable"


def test_tampered_ciphertext_refused(tenant_a):
    """A flipped bit in the ciphertext is detected (GCM tag)."""
    credential = credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="github",
                                   secret={"token": TOKEN})
    data = bytearray(bytes(credential.ciphertext))
    data[0] ^= 1
    IntegrationCredential.objects.for_org(tenant_a.organization).filter(pk=credential.pk).update(ciphertext=bytes(data))
    with pytest.raises(ToolFailed):
        credential_secret(organization=tenant_a.organization, provider="github")


def test_key_rotation_and_reencrypt_command(tenant_a, settings):
    """After a new key is put first, old rows still decrypt; the command moves them all to the new key."""
    settings.STAFFER_CREDENTIAL_KEYS = _key("old", 7)
    credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="github",
                      secret={"token": TOKEN})
    credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="stripe",
                      secret={"secret_key": "sk_test_abcdefghijklmnop"})
    settings.STAFFER_CREDENTIAL_KEYS = f"{_key('new', 9)},{_key('old', 7)}"
    assert credential_secret(organization=tenant_a.organization, provider="github") == {"token": TOKEN}
    out = io.StringIO()
    call_command("credentials_reencrypt", stdout=out)
    assert "re-encrypted 2" in out.getvalue()
    rows = IntegrationCredential.objects.for_org(tenant_a.organization)
    assert set(rows.values_list("key_id", flat=True)) == {"new"}
    settings.STAFFER_CREDENTIAL_KEYS = _key("new", 9)  # the old key is dropped
    assert credential_secret(organization=tenant_a.organization, provider="github") == {"token": TOKEN}
    assert credentials_reencrypt().reencrypted == 0


def test_reencrypt_reports_rows_no_key_opens(tenant_a, settings):
    """A row under a key that is no longer configured is reported, not silently lost."""
    settings.STAFFER_CREDENTIAL_KEYS = _key("gone", 3)
    credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="github",
                      secret={"token": TOKEN})
    settings.STAFFER_CREDENTIAL_KEYS = _key("new", 4)
    assert len(credentials_reencrypt().failed) == 1


def test_bad_input(tenant_a):
    """Unknown providers, missing fields and duplicate names are refused with the field named."""
    with pytest.raises(InvalidInput) as unknown:
        credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="nope", secret={})
    assert unknown.value.field == "provider"
    with pytest.raises(InvalidInput) as missing:
        credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="bamboohr",
                          secret={"api_key": "x"})
    assert "company_domain" in missing.value.message
    credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="github",
                      secret={"token": TOKEN})
    with pytest.raises(Conflict):
        credential_create(organization=tenant_a.organization, actor=tenant_a.admin, provider="github",
                          secret={"token": TOKEN})


def test_keyring_configuration(settings):
    """Keys must be 32 bytes of base64; outside DEBUG and tests no key means no credentials."""
    with pytest.raises(ImproperlyConfigured):
        parse_keys("k1:" + base64.b64encode(b"short").decode())
    with pytest.raises(ImproperlyConfigured):
        parse_keys("no-colon")
    ring = parse_keys(generate_key_spec("a") + "," + generate_key_spec("b"))
    assert ring.primary == "a"
    settings.STAFFER_CREDENTIAL_KEYS = ""
    settings.DEBUG = False
    settings.SETTINGS_MODULE = "config.settings.production"
    with pytest.raises(ImproperlyConfigured):
        keyring()
