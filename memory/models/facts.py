"""Facts the business told the assistant, with provenance, confidence and time validity.

History is kept: a confirmed change closes the old fact (``valid_to``,
``superseded_by``) instead of overwriting it, so "who was CFO in 2021" stays
answerable. A contradicting write waits as a pending fact behind a
:class:`Conflict` until a person resolves it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from accounts.tenancy import OrganizationOwned
from memory import conf


class Category(models.TextChoices):
    COMPANY = "company", "Company"
    TEAM = "team", "Team"
    PREFERENCES = "preferences", "Preferences"
    PROJECTS = "projects", "Projects"
    DECISIONS = "decisions", "Decisions"
    OTHER = "other", "Other"


class FactStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PENDING = "pending", "Waiting for a conflict to be resolved"
    SUPERSEDED = "superseded", "Replaced by a newer fact"


class SourceType(models.TextChoices):
    MESSAGE = "message", "Message"
    DOCUMENT = "document", "Document"
    USER = "user", "Told by a user"
    IMPORT = "import", "Import"
    SYSTEM = "system", "System"


class Fact(OrganizationOwned):
    """One statement: ``subject`` ``predicate`` ``value`` and its sentence ``text``."""

    category = models.CharField(max_length=12, choices=Category.choices, default=Category.OTHER)
    subject = models.ForeignKey(
        "memory.Entity", on_delete=models.CASCADE, null=True, blank=True, related_name="facts"
    )
    predicate = models.CharField(max_length=conf.MAX_PREDICATE_CHARS, blank=True)
    value = models.TextField(blank=True)
    value_key = models.CharField(max_length=255, blank=True, help_text="Normalized value (hashed past 200 characters).")
    text = models.TextField(help_text="The fact as a sentence.")
    text_key = models.CharField(max_length=64, help_text="Hash of the normalized text, for deduplication.")
    status = models.CharField(max_length=10, choices=FactStatus.choices, default=FactStatus.ACTIVE)
    confidence = models.FloatField(default=0.8)
    mentions = models.PositiveIntegerField(default=1, help_text="How many times it was said.")

    source_type = models.CharField(max_length=10, choices=SourceType.choices, default=SourceType.USER)
    source_id = models.CharField(max_length=200, blank=True, help_text="Id of the message or document.")
    source_link = models.CharField(max_length=500, blank=True)
    source_text = models.TextField(blank=True, help_text="The message or passage it came from.")
    source_message = models.ForeignKey(
        "memory.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="facts"
    )

    valid_from = models.DateTimeField(null=True, blank=True, help_text="Empty: since always.")
    valid_to = models.DateTimeField(null=True, blank=True, help_text="Empty: still true.")
    superseded_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="supersedes"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    use_count = models.PositiveIntegerField(default=0)
    expiry_review = models.ForeignKey(
        "memory.ExpiryReview", on_delete=models.SET_NULL, null=True, blank=True, related_name="facts"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    embedding = VectorField(dimensions=conf.EMBEDDING_DIMENSIONS, null=True, blank=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("text", weight="A", config=conf.TEXT_SEARCH_CONFIG)
        + SearchVector("source_text", weight="C", config=conf.TEXT_SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "status", "category"], name="memory_fact_org_status_cat"),
            models.Index(fields=["organization", "subject", "predicate"], name="memory_fact_org_subj_pred"),
            models.Index(fields=["organization", "text_key"], name="memory_fact_org_text_key"),
            models.Index(fields=["organization", "predicate", "value_key"], name="memory_fact_org_pred_value"),
            models.Index(fields=["organization", "last_used_at"], name="memory_fact_org_last_used"),
            HnswIndex(
                name="memory_fact_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(fields=["search_vector"], name="memory_fact_search_gin"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(category__in=[c.value for c in Category]), name="memory_fact_category_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in FactStatus]), name="memory_fact_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=1), name="memory_fact_confidence_range"
            ),
            models.CheckConstraint(
                condition=models.Q(valid_from__isnull=True)
                | models.Q(valid_to__isnull=True)
                | models.Q(valid_to__gte=models.F("valid_from")),
                name="memory_fact_valid_range",
            ),
            models.CheckConstraint(condition=~models.Q(text=""), name="memory_fact_text_not_empty"),
        ]

    def __str__(self) -> str:
        # Never the text: labels end up in logs and the audit trail.
        return f"Fact #{self.pk}"


class ConflictStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RESOLVED = "resolved", "Resolved"


class ConflictResolution(models.TextChoices):
    KEEP_EXISTING = "keep_existing", "The earlier fact is correct"
    ACCEPT_NEW = "accept_new", "The new fact is correct (the earlier one ends)"
    KEEP_BOTH = "keep_both", "Both are true"


class Conflict(OrganizationOwned):
    """A new statement contradicts a fact: a person decides which one holds."""

    status = models.CharField(max_length=10, choices=ConflictStatus.choices, default=ConflictStatus.PENDING)
    existing_fact = models.ForeignKey(Fact, on_delete=models.CASCADE, related_name="conflicts_as_existing")
    proposed_fact = models.ForeignKey(Fact, on_delete=models.CASCADE, related_name="conflicts_as_proposed")
    question = models.TextField()
    resolution = models.CharField(max_length=16, choices=ConflictResolution.choices, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in ConflictStatus]), name="memory_conflict_status_valid"
            ),
            models.UniqueConstraint(
                fields=["proposed_fact"], condition=models.Q(status="pending"), name="memory_conflict_one_pending"
            ),
        ]
        indexes = [models.Index(fields=["organization", "status"], name="memory_conflict_org_status")]

    def __str__(self) -> str:
        return f"Conflict #{self.pk}"
