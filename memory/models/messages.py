"""Messages and passages memory has read, indexed beside the facts drawn from them."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from accounts.tenancy import OrganizationOwned
from memory import conf
from memory.models.facts import SourceType


class Message(OrganizationOwned):
    """One chat turn, email or document passage: searchable evidence for the facts."""

    source_type = models.CharField(max_length=10, choices=SourceType.choices, default=SourceType.MESSAGE)
    source_id = models.CharField(max_length=200, blank=True, help_text="The id it has where it came from.")
    source_link = models.CharField(max_length=500, blank=True)
    speaker = models.CharField(max_length=conf.MAX_NAME_CHARS, blank=True)
    text = models.TextField()
    occurred_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    embedding = VectorField(dimensions=conf.EMBEDDING_DIMENSIONS, null=True, blank=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("speaker", weight="B", config=conf.TEXT_SEARCH_CONFIG)
        + SearchVector("text", weight="A", config=conf.TEXT_SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "source_id"], name="memory_message_org_source"),
            models.Index(fields=["organization", "occurred_at"], name="memory_message_org_occurred"),
            HnswIndex(
                name="memory_message_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(fields=["search_vector"], name="memory_message_search_gin"),
        ]
        constraints = [models.CheckConstraint(condition=~models.Q(text=""), name="memory_message_text_not_empty")]

    def __str__(self) -> str:
        return f"Message #{self.pk}"
