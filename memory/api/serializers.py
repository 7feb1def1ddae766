"""Serializers of the memory API: input checks (field-level 400s) and output shapes."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from memory import conf
from memory.models import (
    Category,
    Conflict,
    ConflictResolution,
    Entity,
    EntityKind,
    ExpiryReview,
    Fact,
    MemorySettings,
    Message,
    Relationship,
    RelationshipKind,
    SourceType,
)


class FactSerializer(serializers.ModelSerializer[Fact]):
    subject_name = serializers.CharField(source="subject.name", read_only=True, default=None)

    class Meta:
        model = Fact
        fields = [
            "id", "category", "subject", "subject_name", "predicate", "value", "text", "status", "confidence",
            "mentions", "source_type", "source_id", "source_link", "source_text", "source_message", "valid_from",
            "valid_to", "superseded_by", "last_used_at", "use_count", "created_by", "created_at", "updated_at",
        ]
        read_only_fields = fields


class FactFilterSerializer(serializers.Serializer[None]):
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    status = serializers.ChoiceField(choices=["active", "pending", "superseded", "all"], required=False,
                                     help_text="Default: active.")
    subject = serializers.IntegerField(required=False, help_text="Facts about this entity.")
    contains = serializers.CharField(required=False, max_length=200, help_text="Text contains (any case).")


class FactCreateSerializer(serializers.Serializer[None]):
    text = serializers.CharField(max_length=conf.MAX_TEXT_CHARS, help_text="The fact as a sentence.")
    category = serializers.ChoiceField(choices=Category.choices, default=Category.OTHER)
    subject = serializers.IntegerField(required=False, allow_null=True, help_text="Id of the entity it is about.")
    predicate = serializers.CharField(max_length=conf.MAX_PREDICATE_CHARS, required=False, allow_blank=True,
                                      default="")
    value = serializers.CharField(max_length=conf.MAX_VALUE_CHARS, required=False, allow_blank=True, default="")
    confidence = serializers.FloatField(min_value=0, max_value=1, default=0.8)
    source_type = serializers.ChoiceField(choices=SourceType.choices, default=SourceType.USER)
    source_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    source_link = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    source_text = serializers.CharField(max_length=conf.MAX_SOURCE_TEXT_CHARS, required=False, allow_blank=True,
                                        default="")
    valid_from = serializers.DateTimeField(required=False, allow_null=True, default=None)
    valid_to = serializers.DateTimeField(required=False, allow_null=True, default=None)
    confirmed = serializers.BooleanField(default=False, help_text="A stated change: supersede instead of asking.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("valid_from") and attrs.get("valid_to") and attrs["valid_to"] < attrs["valid_from"]:
            raise serializers.ValidationError({"valid_to": "ends before it starts"})
        return attrs


class FactUpdateSerializer(serializers.Serializer[None]):
    text = serializers.CharField(max_length=conf.MAX_TEXT_CHARS, required=False)
    value = serializers.CharField(max_length=conf.MAX_VALUE_CHARS, required=False, allow_blank=True)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    confidence = serializers.FloatField(min_value=0, max_value=1, required=False)
    valid_from = serializers.DateTimeField(required=False, allow_null=True)
    valid_to = serializers.DateTimeField(required=False, allow_null=True)


class ConflictSerializer(serializers.ModelSerializer[Conflict]):
    existing_fact = FactSerializer(read_only=True)
    proposed_fact = FactSerializer(read_only=True)

    class Meta:
        model = Conflict
        fields = ["id", "status", "question", "existing_fact", "proposed_fact", "resolution", "resolved_by",
                  "resolved_at", "created_at"]
        read_only_fields = fields


class FactWriteResultSerializer(serializers.Serializer[None]):
    outcome = serializers.ChoiceField(choices=["created", "reinforced", "conflict", "superseded", "updated"])
    message = serializers.CharField()
    fact = FactSerializer()
    conflict = ConflictSerializer(allow_null=True)


class ConflictResolveSerializer(serializers.Serializer[None]):
    resolution = serializers.ChoiceField(choices=ConflictResolution.choices)


class ConflictFilterSerializer(serializers.Serializer[None]):
    status = serializers.ChoiceField(choices=["pending", "resolved"], required=False)


class MemoryMessageSerializer(serializers.ModelSerializer[Message]):
    class Meta:
        model = Message
        fields = ["id", "source_type", "source_id", "source_link", "speaker", "text", "occurred_at", "created_at"]
        read_only_fields = fields


class SearchQuerySerializer(serializers.Serializer[None]):
    q = serializers.CharField(max_length=1000, help_text="The question or keywords.")
    category = serializers.MultipleChoiceField(choices=Category.choices, required=False,
                                               help_text="Only facts of these categories (repeat the parameter).")
    at = serializers.DateTimeField(required=False, help_text="Valid at this time (default: now).")
    limit = serializers.IntegerField(min_value=1, max_value=50, default=10)
    mode = serializers.ChoiceField(choices=["hybrid", "vector", "text"], default="hybrid")
    include_messages = serializers.BooleanField(default=True)


class MemorySearchHitSerializer(serializers.Serializer[None]):
    kind = serializers.ChoiceField(choices=["fact", "message"])
    id = serializers.IntegerField()
    score = serializers.FloatField()
    text = serializers.CharField()
    fact = FactSerializer(allow_null=True)
    message = MemoryMessageSerializer(allow_null=True)
    related_facts = FactSerializer(many=True)
    source_ids = serializers.ListField(child=serializers.CharField())


class RelationshipSerializer(serializers.ModelSerializer[Relationship]):
    source_name = serializers.CharField(source="source.name", read_only=True)
    target_name = serializers.CharField(source="target.name", read_only=True)

    class Meta:
        model = Relationship
        fields = ["id", "kind", "source", "source_name", "target", "target_name", "valid_from", "valid_to",
                  "confidence", "created_at"]
        read_only_fields = fields


class RelationshipCreateSerializer(serializers.Serializer[None]):
    kind = serializers.ChoiceField(choices=RelationshipKind.choices)
    source = serializers.IntegerField(help_text="Entity id.")
    target = serializers.IntegerField(help_text="Entity id.")
    valid_from = serializers.DateTimeField(required=False, allow_null=True, default=None)
    valid_to = serializers.DateTimeField(required=False, allow_null=True, default=None)
    confidence = serializers.FloatField(min_value=0, max_value=1, default=1.0)


class RelationshipEndSerializer(serializers.Serializer[None]):
    at = serializers.DateTimeField(required=False, help_text="When it stopped holding (default: now).")


class EntitySerializer(serializers.ModelSerializer[Entity]):
    class Meta:
        model = Entity
        fields = ["id", "kind", "name", "aliases", "attributes", "created_at", "updated_at"]
        read_only_fields = fields


class EntityDetailSerializer(EntitySerializer):
    relationships = serializers.SerializerMethodField()

    class Meta(EntitySerializer.Meta):
        fields = [*EntitySerializer.Meta.fields, "relationships"]
        read_only_fields = fields

    def get_relationships(self, entity: Entity) -> list[dict[str, Any]]:
        rows = Relationship.objects.for_org(entity.organization).filter(
            source=entity).select_related("source", "target") | Relationship.objects.for_org(
            entity.organization).filter(target=entity).select_related("source", "target")
        return RelationshipSerializer(rows.order_by("id"), many=True).data  # type: ignore[return-value]


class EntityFilterSerializer(serializers.Serializer[None]):
    kind = serializers.ChoiceField(choices=EntityKind.choices, required=False)
    q = serializers.CharField(required=False, max_length=200, help_text="Name contains (any case).")


class EntityCreateSerializer(serializers.Serializer[None]):
    kind = serializers.ChoiceField(choices=EntityKind.choices)
    name = serializers.CharField(max_length=conf.MAX_NAME_CHARS)
    aliases = serializers.ListField(child=serializers.CharField(max_length=conf.MAX_NAME_CHARS), max_length=20,
                                    required=False, default=list)
    attributes = serializers.DictField(required=False, default=dict,
                                       help_text="email and role become facts with history; others are stored as is.")


class EntityUpdateSerializer(serializers.Serializer[None]):
    name = serializers.CharField(max_length=conf.MAX_NAME_CHARS, required=False)
    aliases = serializers.ListField(child=serializers.CharField(max_length=conf.MAX_NAME_CHARS), max_length=20,
                                    required=False)
    attributes = serializers.DictField(required=False)


class EntityGraphNodeSerializer(serializers.Serializer[None]):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    name = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField())
    attributes = serializers.DictField()


class EntityGraphEdgeSerializer(serializers.Serializer[None]):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    source = serializers.IntegerField()
    target = serializers.IntegerField()
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_to = serializers.DateTimeField(allow_null=True)


class EntityGraphSerializer(serializers.Serializer[None]):
    nodes = EntityGraphNodeSerializer(many=True)
    edges = EntityGraphEdgeSerializer(many=True)


class GraphAtSerializer(serializers.Serializer[None]):
    at = serializers.DateTimeField(required=False, help_text="Relationships holding at this time (default: all).")


class MemorySettingsSerializer(serializers.ModelSerializer[MemorySettings]):
    class Meta:
        model = MemorySettings
        fields = ["enabled", "allowed_categories", "auto_expiry_days", "updated_at"]
        read_only_fields = fields


class MemorySettingsUpdateSerializer(serializers.Serializer[None]):
    enabled = serializers.BooleanField(required=False)
    allowed_categories = serializers.ListField(child=serializers.ChoiceField(choices=Category.choices),
                                               required=False, max_length=len(Category.values))
    auto_expiry_days = serializers.IntegerField(min_value=0, max_value=3650, required=False,
                                                help_text="0: never propose expiry.")


class MemoryImportResultSerializer(serializers.Serializer[None]):
    entities = serializers.IntegerField()
    relationships = serializers.IntegerField()
    messages = serializers.IntegerField()
    facts = serializers.IntegerField()
    conflicts = serializers.IntegerField()


class ForgetSerializer(serializers.Serializer[None]):
    topic = serializers.CharField(required=False, max_length=200, help_text="Forget everything mentioning this.")
    fact = serializers.IntegerField(required=False, help_text="Forget this fact (and its earlier versions).")
    dry_run = serializers.BooleanField(default=False, help_text="Only count what would be forgotten.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("topic")) == bool(attrs.get("fact")):
            raise serializers.ValidationError({"topic": "give either a topic or a fact"})
        return attrs


class ForgetReportSerializer(serializers.Serializer[None]):
    facts = serializers.IntegerField()
    messages = serializers.IntegerField()
    entities = serializers.IntegerField()
    conflicts = serializers.IntegerField()
    dry_run = serializers.BooleanField()


class MemoryClearSerializer(serializers.Serializer[None]):
    scope = serializers.ChoiceField(choices=["mine", "all"],
                                    help_text="mine: what you told memory and facts about you; all: everything.")


class AboutQuerySerializer(serializers.Serializer[None]):
    q = serializers.CharField(max_length=200, help_text="A person, team, project, tool or topic.")
    at = serializers.DateTimeField(required=False)


class MemoryAboutSerializer(serializers.Serializer[None]):
    topic = serializers.CharField()
    entity = EntitySerializer(allow_null=True)
    facts = FactSerializer(many=True)
    relationships = RelationshipSerializer(many=True)
    related = MemorySearchHitSerializer(many=True, source="hits")


class MemoryMyDataSerializer(serializers.Serializer[None]):
    person = EntitySerializer(allow_null=True)
    facts = FactSerializer(many=True)
    messages = MemoryMessageSerializer(many=True)


class ResolveQuerySerializer(serializers.Serializer[None]):
    phrase = serializers.CharField(max_length=200, help_text='"my manager", "the finance team", "the CFO"...')
    at = serializers.DateTimeField(required=False)


class ReferenceResolutionSerializer(serializers.Serializer[None]):
    phrase = serializers.CharField()
    kind = serializers.CharField()
    entities = EntitySerializer(many=True)
    group = EntitySerializer(allow_null=True)
    description = serializers.CharField()


class MemoryAnalyticsSerializer(serializers.Serializer[None]):
    facts_total = serializers.IntegerField()
    facts_current = serializers.IntegerField()
    by_category = serializers.DictField(child=serializers.IntegerField())
    by_status = serializers.DictField(child=serializers.IntegerField())
    confidence_distribution = serializers.ListField(child=serializers.DictField())
    recently_used = serializers.ListField(child=serializers.DictField())
    last_updated = serializers.DateTimeField(allow_null=True)
    pending_conflicts = serializers.IntegerField()
    entities = serializers.DictField(child=serializers.IntegerField())
    relationships = serializers.IntegerField()
    messages = serializers.IntegerField()


class ExpiryReviewSerializer(serializers.ModelSerializer[ExpiryReview]):
    class Meta:
        model = ExpiryReview
        fields = ["id", "status", "cutoff", "fact_count", "decided_by", "decided_at", "created_at"]
        read_only_fields = fields


class ExpiryDecisionSerializer(serializers.Serializer[None]):
    approve = serializers.BooleanField(help_text="true: delete the proposed facts still unused; false: keep them.")
    summarize = serializers.BooleanField(default=False,
                                         help_text="With approve: keep one summary fact per subject and category.")


class ExpiryDecisionResultSerializer(serializers.Serializer[None]):
    review = ExpiryReviewSerializer()
    deleted = serializers.IntegerField()
