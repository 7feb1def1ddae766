"""Reads for the memory API and pages: analytics and listings."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, Q
from django.utils import timezone

from accounts.models import Organization
from memory.models import Category, Conflict, ConflictStatus, Entity, Fact, FactStatus, Message, Relationship

CONFIDENCE_BUCKETS = [(0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0001)]


def memory_analytics(*, organization: Organization, recent: int = 10) -> dict[str, Any]:
    """Totals by category, recently used facts, confidence distribution, last update."""
    now = timezone.now()
    facts = Fact.objects.for_org(organization)
    current = facts.filter(status=FactStatus.ACTIVE).filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
    by_category = dict(current.values_list("category").annotate(n=Count("id")).values_list("category", "n"))
    by_status = dict(facts.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    buckets = current.aggregate(**{
        f"b{i}": Count("id", filter=Q(confidence__gte=low, confidence__lt=high))
        for i, (low, high) in enumerate(CONFIDENCE_BUCKETS)
    })
    recently_used = list(
        facts.filter(last_used_at__isnull=False).order_by("-last_used_at", "-id")
        .values("id", "text", "category", "last_used_at", "use_count")[:recent]
    )
    return {
        "facts_total": facts.count(),
        "facts_current": current.count(),
        "by_category": {c: by_category.get(c, 0) for c in Category.values},
        "by_status": {s: by_status.get(s, 0) for s in FactStatus.values},
        "confidence_distribution": [
            {"from": low, "to": min(high, 1.0), "count": buckets[f"b{i}"]}
            for i, (low, high) in enumerate(CONFIDENCE_BUCKETS)
        ],
        "recently_used": recently_used,
        "last_updated": facts.aggregate(at=Max("updated_at"))["at"],
        "pending_conflicts": Conflict.objects.for_org(organization).filter(status=ConflictStatus.PENDING).count(),
        "entities": dict(
            Entity.objects.for_org(organization).values_list("kind").annotate(n=Count("id")).values_list("kind", "n")
        ),
        "relationships": Relationship.objects.for_org(organization).count(),
        "messages": Message.objects.for_org(organization).count(),
    }


def entity_graph(*, organization: Organization, at: Any = None, limit: int = 2000) -> dict[str, Any]:
    """Entities as nodes and relationships as edges (those holding at ``at`` when given)."""
    relationships = Relationship.objects.for_org(organization).select_related("source", "target")
    if at is not None:
        relationships = relationships.filter(
            (Q(valid_from__isnull=True) | Q(valid_from__lte=at)) & (Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        )
    nodes = list(Entity.objects.for_org(organization).order_by("id")[:limit])
    node_ids = {n.pk for n in nodes}
    return {
        "nodes": [
            {"id": n.pk, "kind": n.kind, "name": n.name, "aliases": n.aliases, "attributes": n.attributes}
            for n in nodes
        ],
        "edges": [
            {"id": r.pk, "kind": r.kind, "source": r.source_id, "target": r.target_id,
             "valid_from": r.valid_from, "valid_to": r.valid_to}
            for r in relationships.order_by("id")[: limit * 4]
            if r.source_id in node_ids and r.target_id in node_ids
        ],
    }
