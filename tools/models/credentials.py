from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.tenancy import OrganizationOwned


class IntegrationCredential(OrganizationOwned):
    """A secret for an integration (a token, an API key, a webhook URL), encrypted at rest.

    SECURITY: ``ciphertext`` is AES-256-GCM under the key named by ``key_id``
    (see ``tools.crypto``), with the organization, provider and name as
    associated data, so a row copied to another organization does not decrypt.
    The plaintext never leaves ``tools.services.credentials``: not in a model
    prompt, a log, a ToolCall or an API response. ``hint`` (last characters) is
    all that is shown.
    """

    provider = models.CharField(max_length=40)
    name = models.CharField(max_length=60, default="default")
    key_id = models.CharField(max_length=40)
    nonce = models.BinaryField(max_length=12)
    ciphertext = models.BinaryField()
    hint = models.CharField(max_length=12, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provider", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "provider", "name"], name="credential_one_per_name"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.name}"

    def __repr__(self) -> str:
        return f"<IntegrationCredential {self.pk} {self.provider}:{self.name}>"
