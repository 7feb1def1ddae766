"""The memory API under /api/v1/orgs/{org_slug}/memory/: input serializer → one service call → output."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrgScopedMixin, OrgScopedViewSet
from accounts.errors import InvalidInput
from accounts.roles import Scope
from memory import references, retrieval
from memory.api import serializers as s
from memory.models import Conflict, Entity, ExpiryReview, Fact, Relationship
from memory.selectors import entity_graph, memory_analytics
from memory.services import commands, conflicts, entities, expiry, facts, portability
from memory.services import settings as settings_services

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The row's id.")


def _entity_or_400(organization: Any, entity_id: int | None, field: str) -> Entity | None:
    if entity_id is None:
        return None
    found = Entity.objects.for_org(organization).filter(pk=entity_id).first()
    if found is None:
        raise InvalidInput("no such entity in this organization", field=field)
    return found


def _write_result(result: facts.WriteResult, code: int = status.HTTP_201_CREATED) -> Response:
    data = s.FactWriteResultSerializer({"outcome": result.outcome, "message": result.message, "fact": result.fact,
                                    "conflict": result.conflict}).data
    return Response(data, status=code)


# --- facts ---------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(tags=["memory"], parameters=[ORG_SLUG, s.FactFilterSerializer],
                       summary="Facts, newest first (default: active ones)"),
    retrieve=extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID]),
)
class FactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The organization's facts: list, search, remember, edit (a new version), delete, history."""

    model = Fact
    serializer_class = s.FactSerializer
    read_scope = Scope.MEMORY_READ
    write_scope = Scope.MEMORY_WRITE

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = queryset.select_related("subject")
        if self.action != "list":
            return queryset
        incoming = s.FactFilterSerializer(data=self.request.query_params)
        incoming.is_valid(raise_exception=True)
        filters = incoming.validated_data
        state = filters.get("status", "active")
        if state != "all":
            queryset = queryset.filter(status=state)
        if "category" in filters:
            queryset = queryset.filter(category=filters["category"])
        if "subject" in filters:
            queryset = queryset.filter(subject_id=filters["subject"])
        if filters.get("contains"):
            queryset = queryset.filter(text__icontains=filters["contains"])
        return queryset.order_by("-updated_at", "-id")

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG], request=s.FactCreateSerializer,
                   responses={201: s.FactWriteResultSerializer},
                   summary="Remember a fact (deduplicated; a contradiction opens a conflict)")
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = s.FactCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        confirmed = data.pop("confirmed")
        data["subject"] = _entity_or_400(self.organization, data.get("subject"), "subject")
        result = facts.fact_remember(organization=self.organization, candidate=facts.FactInput(**data),
                                     actor=request.user, confirmed=confirmed)
        return _write_result(result)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID], request=s.FactUpdateSerializer,
                   responses=s.FactWriteResultSerializer,
                   summary="Edit a fact (a new text or value is a new version; the old one is kept in history)")
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        fact = self.get_object()
        incoming = s.FactUpdateSerializer(data=request.data, partial=True)
        incoming.is_valid(raise_exception=True)
        result = facts.fact_update(organization=self.organization, fact=fact, actor=request.user,
                                   **dict(incoming.validated_data))
        return _write_result(result, status.HTTP_200_OK)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID], responses={204: None},
                   summary="Delete a fact for good (text, source and embedding)")
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        facts.fact_delete(organization=self.organization, fact=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID], responses=s.FactSerializer(many=True),
                   summary="Every version of the fact, oldest first")
    @action(detail=True, methods=["get"])
    def history(self, request: Request, org_slug: str, pk: str) -> Response:
        versions = facts.fact_history(organization=self.organization, fact=self.get_object())
        return Response(s.FactSerializer(versions, many=True).data)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, s.SearchQuerySerializer],
                   responses=s.MemorySearchHitSerializer(many=True),
                   summary="Hybrid search (vector and full text) over facts and messages, at a point in time")
    @action(detail=False, methods=["get"])
    def search(self, request: Request, org_slug: str) -> Response:
        incoming = s.SearchQuerySerializer(data=request.query_params)
        incoming.is_valid(raise_exception=True)
        query = incoming.validated_data
        hits = retrieval.search(
            organization=self.organization, query=query["q"], categories=sorted(query.get("category") or []),
            at=query.get("at"), limit=query["limit"], include_messages=query["include_messages"],
            options=retrieval.SearchOptions(mode=query["mode"]),
        )
        return Response(s.MemorySearchHitSerializer(hits, many=True).data)


# --- conflicts -----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(tags=["memory"], parameters=[ORG_SLUG, s.ConflictFilterSerializer]),
    retrieve=extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID]),
)
class ConflictViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Contradictions waiting for a person: "You said X before, now Y. Which is correct?"."""

    model = Conflict
    serializer_class = s.ConflictSerializer
    read_scope = Scope.MEMORY_READ
    write_scope = Scope.MEMORY_WRITE

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = queryset.select_related("existing_fact__subject", "proposed_fact__subject")
        if self.action == "list":
            incoming = s.ConflictFilterSerializer(data=self.request.query_params)
            incoming.is_valid(raise_exception=True)
            if "status" in incoming.validated_data:
                queryset = queryset.filter(status=incoming.validated_data["status"])
        return queryset

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID], request=s.ConflictResolveSerializer,
                   responses=s.ConflictSerializer, summary="Answer the conflict's question")
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, org_slug: str, pk: str) -> Response:
        conflict = self.get_object()
        incoming = s.ConflictResolveSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        resolved = conflicts.conflict_resolve(organization=self.organization, conflict=conflict,
                                              resolution=incoming.validated_data["resolution"], actor=request.user)
        resolved = Conflict.objects.for_org(self.organization).select_related(
            "existing_fact", "proposed_fact").get(pk=resolved.pk)
        return Response(s.ConflictSerializer(resolved).data)


# --- entities and relationships ------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(tags=["memory"], parameters=[ORG_SLUG, s.EntityFilterSerializer]),
    retrieve=extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID], responses=s.EntityDetailSerializer),
)
class EntityViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """People, companies, teams, projects and tools, with their relationships."""

    model = Entity
    serializer_class = s.EntitySerializer
    read_scope = Scope.MEMORY_READ
    write_scope = Scope.MEMORY_WRITE

    def get_serializer_class(self) -> type[Any]:
        return s.EntityDetailSerializer if self.action == "retrieve" else s.EntitySerializer

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.action == "list":
            incoming = s.EntityFilterSerializer(data=self.request.query_params)
            incoming.is_valid(raise_exception=True)
            filters = incoming.validated_data
            if "kind" in filters:
                queryset = queryset.filter(kind=filters["kind"])
            if filters.get("q"):
                queryset = queryset.filter(Q(name__icontains=filters["q"]) | Q(alias_keys__icontains=filters["q"]))
        return queryset

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG], request=s.EntityCreateSerializer,
                   responses={201: s.EntitySerializer}, summary="Create an entity (or merge into the one named so)")
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = s.EntityCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        entity, _ = entities.entity_upsert(organization=self.organization, actor=request.user,
                                           **incoming.validated_data)
        return Response(s.EntitySerializer(entity).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID], request=s.EntityUpdateSerializer,
                   responses=s.EntitySerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        entity = self.get_object()
        incoming = s.EntityUpdateSerializer(data=request.data, partial=True)
        incoming.is_valid(raise_exception=True)
        entity = entities.entity_update(organization=self.organization, entity=entity, actor=request.user,
                                        **incoming.validated_data)
        return Response(s.EntitySerializer(entity).data)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID], responses={204: None},
                   summary="Delete the entity, its relationships and the facts about it")
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        entities.entity_delete(organization=self.organization, entity=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, s.GraphAtSerializer], responses=s.EntityGraphSerializer,
                   summary="Entities and relationships as a graph (nodes and edges)")
    @action(detail=False, methods=["get"])
    def graph(self, request: Request, org_slug: str) -> Response:
        incoming = s.GraphAtSerializer(data=request.query_params)
        incoming.is_valid(raise_exception=True)
        return Response(s.EntityGraphSerializer(entity_graph(organization=self.organization,
                                                       at=incoming.validated_data.get("at"))).data)


@extend_schema_view(
    list=extend_schema(tags=["memory"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID]),
)
class RelationshipViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Relationships between entities (works_for, manages, member_of, owns, uses), with time validity."""

    model = Relationship
    serializer_class = s.RelationshipSerializer
    read_scope = Scope.MEMORY_READ
    write_scope = Scope.MEMORY_WRITE

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related("source", "target").order_by("id")

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG], request=s.RelationshipCreateSerializer,
                   responses={201: s.RelationshipSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = s.RelationshipCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        relationship = entities.relationship_create(organization=self.organization, actor=request.user,
                                                    **incoming.validated_data)
        return Response(s.RelationshipSerializer(relationship).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID], request=s.RelationshipEndSerializer,
                   responses=s.RelationshipSerializer, summary="It stopped holding (kept in history)")
    @action(detail=True, methods=["post"])
    def end(self, request: Request, org_slug: str, pk: str) -> Response:
        relationship = self.get_object()
        incoming = s.RelationshipEndSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        relationship = entities.relationship_end(organization=self.organization, relationship=relationship,
                                                 actor=request.user,
                                                 at=incoming.validated_data.get("at") or timezone.now())
        return Response(s.RelationshipSerializer(relationship).data)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID], responses={204: None})
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        entities.relationship_delete(organization=self.organization, relationship=self.get_object(),
                                     actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- expiry reviews ------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(tags=["memory"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID]),
)
class ExpiryReviewViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Unused facts proposed for deletion by the expiry job, waiting for a decision."""

    model = ExpiryReview
    serializer_class = s.ExpiryReviewSerializer
    read_scope = Scope.MEMORY_READ
    write_scope = Scope.MEMORY_WRITE

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, ID], request=s.ExpiryDecisionSerializer,
                   responses=s.ExpiryDecisionResultSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, org_slug: str, pk: str) -> Response:
        review = self.get_object()
        incoming = s.ExpiryDecisionSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        deleted = expiry.expiry_review_decide(organization=self.organization, review=review, actor=request.user,
                                              approve=incoming.validated_data["approve"],
                                              summarize=incoming.validated_data["summarize"])
        review.refresh_from_db()
        return Response(s.ExpiryDecisionResultSerializer({"review": review, "deleted": deleted}).data)


# --- memory-wide operations --------------------------------------------------------------------


class MemoryViewSet(OrgScopedMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Analytics, export and import, settings, forget, what-do-you-know-about, my data, clear, references."""

    read_scope = Scope.MEMORY_READ
    write_scope = Scope.MEMORY_WRITE
    action_scopes = {"clear": Scope.MEMORY_WRITE}
    serializer_class = s.MemoryAnalyticsSerializer

    def required_scope(self, request: Request) -> str:
        if self.action == "memory_settings" and request.method not in ("GET", "HEAD", "OPTIONS"):
            return Scope.ORG_WRITE
        return super().required_scope(request)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG], responses=s.MemoryAnalyticsSerializer,
                   summary="Totals by category, recently used, confidence distribution, last update")
    @action(detail=False, methods=["get"])
    def analytics(self, request: Request, org_slug: str) -> Response:
        return Response(s.MemoryAnalyticsSerializer(memory_analytics(organization=self.organization)).data)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG], responses={200: OpenApiTypes.OBJECT},
                   summary="Export as JSON (imports back losslessly)")
    @action(detail=False, methods=["get"])
    def export(self, request: Request, org_slug: str) -> Response:
        return Response(portability.export_json(organization=self.organization))

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG],
                   responses={(200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR)},
                   summary="Export as Markdown (to read)")
    @action(detail=False, methods=["get"], url_path="export-markdown")
    def export_markdown(self, request: Request, org_slug: str) -> HttpResponse:
        text = portability.export_markdown(organization=self.organization)
        response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="memory-{self.organization.slug}.md"'
        return response

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG], request=OpenApiTypes.OBJECT,
                   responses={201: s.MemoryImportResultSerializer},
                   summary="Import a JSON export (all or nothing; a bad row is named with its reason)")
    @action(detail=False, methods=["post"], url_path="import")
    def import_(self, request: Request, org_slug: str) -> Response:
        counts = portability.import_json(organization=self.organization, data=request.data, actor=request.user)
        return Response(s.MemoryImportResultSerializer(counts).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG], methods=["GET"], responses=s.MemorySettingsSerializer)
    @extend_schema(tags=["memory"], parameters=[ORG_SLUG], methods=["PATCH"], request=s.MemorySettingsUpdateSerializer,
                   responses=s.MemorySettingsSerializer, summary="Change memory settings (admins)")
    @action(detail=False, methods=["get", "patch"], url_path="settings")
    def memory_settings(self, request: Request, org_slug: str) -> Response:
        if request.method == "PATCH":
            incoming = s.MemorySettingsUpdateSerializer(data=request.data, partial=True)
            incoming.is_valid(raise_exception=True)
            current = settings_services.memory_settings_update(organization=self.organization, actor=request.user,
                                                             **incoming.validated_data)
        else:
            current = settings_services.memory_settings_get(organization=self.organization)
        return Response(s.MemorySettingsSerializer(current).data)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG], request=s.ForgetSerializer,
                   responses=s.ForgetReportSerializer, summary="Forget a fact or everything about a topic")
    @action(detail=False, methods=["post"])
    def forget(self, request: Request, org_slug: str) -> Response:
        incoming = s.ForgetSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        if data.get("fact"):
            fact = Fact.objects.for_org(self.organization).filter(pk=data["fact"]).first()
            if fact is None:
                raise InvalidInput("no such fact in this organization", field="fact")
            if data["dry_run"]:
                report = commands.ForgetReport(topic="", facts=1)
            else:
                report = commands.memory_forget_fact(organization=self.organization, fact=fact, actor=request.user)
        else:
            report = commands.memory_forget_topic(organization=self.organization, topic=data["topic"],
                                                  actor=request.user, dry_run=data["dry_run"])
        return Response(s.ForgetReportSerializer({**report.as_dict(), "dry_run": data["dry_run"]}).data)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, s.AboutQuerySerializer], responses=s.MemoryAboutSerializer,
                   summary="What do you know about X")
    @action(detail=False, methods=["get"])
    def about(self, request: Request, org_slug: str) -> Response:
        incoming = s.AboutQuerySerializer(data=request.query_params)
        incoming.is_valid(raise_exception=True)
        knowledge = commands.memory_about(organization=self.organization, topic=incoming.validated_data["q"],
                                          at=incoming.validated_data.get("at"))
        return Response(s.MemoryAboutSerializer(knowledge).data)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG], responses=s.MemoryMyDataSerializer,
                   summary="Show my data: what I told memory and the facts about me")
    @action(detail=False, methods=["get"], url_path="my-data")
    def my_data(self, request: Request, org_slug: str) -> Response:
        shown = commands.memory_show_my_data(organization=self.organization, user=request.user)
        return Response(s.MemoryMyDataSerializer(shown).data)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG], request=s.MemoryClearSerializer,
                   responses=s.ForgetReportSerializer,
                   summary="Clear my data, or (admins) the organization's whole memory")
    @action(detail=False, methods=["post"])
    def clear(self, request: Request, org_slug: str) -> Response:
        incoming = s.MemoryClearSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        if incoming.validated_data["scope"] == "all":
            if Scope.ORG_WRITE not in self.scopes:
                raise exceptions.PermissionDenied(f"this needs the {Scope.ORG_WRITE} scope")
            report = commands.memory_clear_all(organization=self.organization, actor=request.user)
        else:
            report = commands.memory_clear_my_data(organization=self.organization, user=request.user,
                                                   actor=request.user)
        return Response(s.ForgetReportSerializer({**report.as_dict(), "dry_run": False}).data)

    @extend_schema(tags=["memory"], parameters=[ORG_SLUG, s.ResolveQuerySerializer],
                   responses=s.ReferenceResolutionSerializer,
                   summary='Resolve "my manager", "the finance team", "the CFO" for the caller')
    @action(detail=False, methods=["get"])
    def resolve(self, request: Request, org_slug: str) -> Response:
        incoming = s.ResolveQuerySerializer(data=request.query_params)
        incoming.is_valid(raise_exception=True)
        resolution = references.resolve_reference(organization=self.organization,
                                                  phrase=incoming.validated_data["phrase"], speaker=request.user,
                                                  at=incoming.validated_data.get("at"))
        return Response(s.ReferenceResolutionSerializer(resolution).data)



