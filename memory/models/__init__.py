"""Business memory: facts, entities, relationships, indexed messages, conflicts and settings."""

from memory.models.entities import Entity, EntityKind, Relationship, RelationshipKind
from memory.models.facts import Category, Conflict, ConflictResolution, ConflictStatus, Fact, FactStatus, SourceType
from memory.models.messages import Message
from memory.models.settings import ExpiryReview, ExpiryReviewStatus, MemorySettings

__all__ = [
    "Category",
    "Conflict",
    "ConflictResolution",
    "ConflictStatus",
    "Entity",
    "EntityKind",
    "ExpiryReview",
    "ExpiryReviewStatus",
    "Fact",
    "FactStatus",
    "MemorySettings",
    "Message",
    "Relationship",
    "RelationshipKind",
    "SourceType",
]
