"""People, companies, teams, projects and tools, and the relationships between them."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from accounts.tenancy import OrganizationOwned
from memory import conf


class EntityKind(models.TextChoices):
    PERSON = "person", "Person"
    COMPANY = "company", "Company"
    TEAM = "team", "Team"
    PROJECT = "project", "Project"
    TOOL = "tool", "Tool"


class RelationshipKind(models.TextChoices):
    WORKS_FOR = "works_for", "works for"
    MANAGES = "manages", "manages"
    MEMBER_OF = "member_of", "is a member of"
    OWNS = "owns", "owns"
    USES = "uses", "uses"


class Entity(OrganizationOwned):
    """Something the business talks about. ``key`` is the lower-cased name, unique per kind."""

    kind = models.CharField(max_length=10, choices=EntityKind.choices)
    name = models.CharField(max_length=conf.MAX_NAME_CHARS)
    key = models.CharField(max_length=conf.MAX_NAME_CHARS, help_text="Normalized name, for lookups.")
    aliases = ArrayField(models.CharField(max_length=conf.MAX_NAME_CHARS), default=list, blank=True)
    alias_keys = ArrayField(
        models.CharField(max_length=conf.MAX_NAME_CHARS), default=list, blank=True,
        help_text="Normalized name and aliases, for lookups.",
    )
    attributes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder,
                                  help_text="Current attributes such as email and role.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "name", "id"]
        verbose_name_plural = "entities"
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind", "key"], name="memory_entity_unique_key"),
            models.CheckConstraint(
                condition=models.Q(kind__in=[k.value for k in EntityKind]), name="memory_entity_kind_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "key"], name="memory_entity_org_key"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class Relationship(OrganizationOwned):
    """``source`` *kind* ``target`` (Ann manages Bob), valid from/to a point in time."""

    kind = models.CharField(max_length=10, choices=RelationshipKind.choices)
    source = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="outgoing")
    target = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="incoming")
    valid_from = models.DateTimeField(null=True, blank=True, help_text="Empty: since always.")
    valid_to = models.DateTimeField(null=True, blank=True, help_text="Empty: still true.")
    confidence = models.FloatField(default=1.0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=[k.value for k in RelationshipKind]), name="memory_rel_kind_valid"
            ),
            models.CheckConstraint(condition=~models.Q(source=models.F("target")), name="memory_rel_not_self"),
            models.CheckConstraint(
                condition=models.Q(valid_from__isnull=True)
                | models.Q(valid_to__isnull=True)
                | models.Q(valid_to__gt=models.F("valid_from")),
                name="memory_rel_valid_range",
            ),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=1), name="memory_rel_confidence_range"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "kind", "target"], name="memory_rel_org_kind_target"),
            models.Index(fields=["organization", "kind", "source"], name="memory_rel_org_kind_source"),
        ]

    def __str__(self) -> str:
        return f"Relationship #{self.pk} ({self.kind})"
