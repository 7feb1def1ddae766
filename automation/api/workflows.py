"""Workflows API: templates, their versions, starting them, and their runs."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import NOT_FOUND, OrgScopedViewSet
from accounts.roles import Scope
from automation.models import Task, WorkflowRun, WorkflowTemplate, WorkflowVersion
from automation.services import workflows as workflow_services

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The row's id.")
NUMBER = OpenApiParameter("number", int, OpenApiParameter.PATH, description="The version number.")


class WorkflowVersionSerializer(serializers.ModelSerializer[WorkflowVersion]):
    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    class Meta:
        model = WorkflowVersion
        fields = ["id", "number", "definition", "note", "created_by", "created_at"]
        read_only_fields = fields


class WorkflowSerializer(serializers.ModelSerializer[WorkflowTemplate]):
    class Meta:
        model = WorkflowTemplate
        fields = ["id", "slug", "name", "description", "latest_version", "archived", "created_at", "updated_at"]
        read_only_fields = fields


class WorkflowDetailSerializer(WorkflowSerializer):
    definition = serializers.SerializerMethodField()

    class Meta(WorkflowSerializer.Meta):
        fields = [*WorkflowSerializer.Meta.fields, "definition"]
        read_only_fields = fields

    def get_definition(self, template: WorkflowTemplate) -> dict[str, Any] | None:
        version = WorkflowVersion.objects.for_org(template.organization).filter(
            template=template, number=template.latest_version
        ).first()
        return version.definition if version else None


class WorkflowCreateSerializer(serializers.Serializer[None]):
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    definition = serializers.JSONField(help_text='{"inputs": [...], "steps": [{"key", "title", "executor", …}]}')
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class WorkflowUpdateSerializer(serializers.Serializer[None]):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    archived = serializers.BooleanField(required=False)


class VersionCreateSerializer(serializers.Serializer[None]):
    definition = serializers.JSONField()
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class StartSerializer(serializers.Serializer[None]):
    inputs = serializers.JSONField(required=False, default=dict)
    version = serializers.IntegerField(required=False, min_value=1, help_text="Default: the latest.")
    title = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    priority = serializers.IntegerField(required=False, min_value=0, max_value=100)


class WorkflowFilterSerializer(serializers.Serializer[None]):
    archived = serializers.BooleanField(required=False)


class StepStatusSerializer(serializers.Serializer[None]):
    key = serializers.CharField()
    task = serializers.IntegerField()
    title = serializers.CharField()
    executor = serializers.CharField()
    status = serializers.CharField()
    depends_on = serializers.ListField(child=serializers.CharField())
    blocked_reason = serializers.CharField()
    failure_reason = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


class WorkflowRunSerializer(serializers.ModelSerializer[WorkflowRun]):
    workflow = serializers.IntegerField(source="template_id", read_only=True)
    workflow_name = serializers.CharField(source="template.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    started_by = serializers.EmailField(source="started_by.email", read_only=True, default=None)
    status = serializers.CharField(source="task.status", read_only=True)
    title = serializers.CharField(source="task.title", read_only=True)
    failure_reason = serializers.CharField(source="task.failure_reason", read_only=True)
    completed_at = serializers.DateTimeField(source="task.completed_at", read_only=True)

    class Meta:
        model = WorkflowRun
        fields = [
            "id", "workflow", "workflow_name", "version", "task", "title", "status", "failure_reason", "inputs",
            "started_by", "created_at", "completed_at",
        ]
        read_only_fields = fields


class WorkflowRunDetailSerializer(WorkflowRunSerializer):
    steps = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta(WorkflowRunSerializer.Meta):
        fields = [*WorkflowRunSerializer.Meta.fields, "steps", "progress"]
        read_only_fields = fields

    def _steps(self, run: WorkflowRun) -> list[dict[str, Any]]:
        cached = getattr(run, "_steps_cache", None)
        if cached is not None:
            return cached
        definition = {s["key"]: s for s in run.version.definition.get("steps", [])}
        prefix = f"{run.template.slug}:"
        rows = []
        for task in Task.objects.for_org(run.organization).filter(parent=run.task).order_by("pk"):
            key = task.step_key[len(prefix):] if task.step_key.startswith(prefix) else task.step_key
            rows.append({
                "key": key, "task": task.pk, "title": task.title, "executor": task.executor, "status": task.status,
                "depends_on": definition.get(key, {}).get("depends_on", []), "blocked_reason": task.blocked_reason,
                "failure_reason": task.failure_reason, "started_at": task.started_at,
                "completed_at": task.completed_at,
            })
        run._steps_cache = rows  # type: ignore[attr-defined]
        return rows

    @extend_schema_field(StepStatusSerializer(many=True))
    def get_steps(self, run: WorkflowRun) -> list[dict[str, Any]]:
        return StepStatusSerializer(self._steps(run), many=True).data  # type: ignore[return-value]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_progress(self, run: WorkflowRun) -> dict[str, int]:
        steps = self._steps(run)
        counts: dict[str, int] = {"total": len(steps)}
        for step in steps:
            counts[step["status"]] = counts.get(step["status"], 0) + 1
        return counts


@extend_schema_view(
    list=extend_schema(tags=["workflows"], parameters=[ORG_SLUG, WorkflowFilterSerializer]),
    retrieve=extend_schema(tags=["workflows"], parameters=[ORG_SLUG, ID], responses=WorkflowDetailSerializer),
)
class WorkflowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Workflow templates: a versioned DAG of steps; starting one creates a parent task with subtasks."""

    model = WorkflowTemplate
    serializer_class = WorkflowSerializer
    read_scope = Scope.WORKFLOWS_READ
    write_scope = Scope.WORKFLOWS_WRITE
    action_scopes = {"start": Scope.TASKS_WRITE, "version": Scope.WORKFLOWS_READ, "runs": Scope.WORKFLOWS_READ}

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return WorkflowDetailSerializer if self.action == "retrieve" else WorkflowSerializer

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.action == "list":
            filters = WorkflowFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            if "archived" in filters.validated_data:
                queryset = queryset.filter(archived=filters.validated_data["archived"])
        return queryset

    @extend_schema(tags=["workflows"], parameters=[ORG_SLUG], request=WorkflowCreateSerializer,
                   responses={201: WorkflowDetailSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = WorkflowCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        template = workflow_services.workflow_create(organization=self.organization, actor=request.user,
                                                     **incoming.validated_data)
        return Response(WorkflowDetailSerializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["workflows"], parameters=[ORG_SLUG, ID], request=WorkflowUpdateSerializer,
                   responses=WorkflowDetailSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        incoming = WorkflowUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        template = workflow_services.workflow_update(template=self.get_object(), actor=request.user,
                                                     **incoming.validated_data)
        return Response(WorkflowDetailSerializer(template).data)

    @extend_schema(tags=["workflows"], parameters=[ORG_SLUG, ID], responses={204: None},
                   summary="Delete a workflow never started (409 if it has runs: archive it instead)")
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        workflow_services.workflow_delete(template=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(tags=["workflows"], parameters=[ORG_SLUG, ID], methods=["GET"],
                   responses=WorkflowVersionSerializer(many=True), summary="The workflow's versions, newest first")
    @extend_schema(tags=["workflows"], parameters=[ORG_SLUG, ID], methods=["POST"], request=VersionCreateSerializer,
                   responses={201: WorkflowVersionSerializer}, summary="Save a new version of the steps")
    @action(detail=True, methods=["get", "post"])
    def versions(self, request: Request, org_slug: str, pk: str) -> Response:
        template = self.get_object()
        if request.method == "POST":
            incoming = VersionCreateSerializer(data=request.data)
            incoming.is_valid(raise_exception=True)
            version = workflow_services.workflow_version_create(template=template, actor=request.user,
                                                                **incoming.validated_data)
            return Response(WorkflowVersionSerializer(version).data, status=status.HTTP_201_CREATED)
        rows = WorkflowVersion.objects.for_org(self.organization).filter(template=template).select_related(
            "created_by"
        ).order_by("-number")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(WorkflowVersionSerializer(page, many=True).data)

    @extend_schema(tags=["workflows"], parameters=[ORG_SLUG, ID, NUMBER], responses=WorkflowVersionSerializer,
                   summary="One version of the workflow")
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>[0-9]+)")
    def version(self, request: Request, org_slug: str, pk: str, number: str) -> Response:
        template = self.get_object()
        version = WorkflowVersion.objects.for_org(self.organization).filter(template=template,
                                                                            number=int(number)).first()
        if version is None:
            raise NotFound(NOT_FOUND)
        return Response(WorkflowVersionSerializer(version).data)

    @extend_schema(tags=["workflows"], parameters=[ORG_SLUG, ID], request=StartSerializer,
                   responses={201: WorkflowRunDetailSerializer},
                   summary="Start the workflow: a parent task with one subtask per step")
    @action(detail=True, methods=["post"])
    def start(self, request: Request, org_slug: str, pk: str) -> Response:
        template = self.get_object()
        incoming = StartSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        started = workflow_services.workflow_start(
            template=template, actor=request.user, inputs=data.get("inputs"), version_number=data.get("version"),
            title=data.get("title", ""), priority=data.get("priority"),
        )
        return Response(WorkflowRunDetailSerializer(started.run).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["workflows"], parameters=[ORG_SLUG, ID], responses=WorkflowRunSerializer(many=True),
                   summary="The workflow's runs, newest first")
    @action(detail=True, methods=["get"])
    def runs(self, request: Request, org_slug: str, pk: str) -> Response:
        template = self.get_object()
        rows = _runs(self.organization).filter(template=template)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(WorkflowRunSerializer(page, many=True).data)


def _runs(organization: Any) -> QuerySet[WorkflowRun]:
    return WorkflowRun.objects.for_org(organization).select_related("template", "version", "task", "started_by")


class RunFilterSerializer(serializers.Serializer[None]):
    workflow = serializers.IntegerField(required=False, help_text="Only runs of this workflow id.")
    status = serializers.CharField(required=False, help_text="Only runs whose parent task has this status.")


@extend_schema_view(
    list=extend_schema(tags=["workflows"], parameters=[ORG_SLUG, RunFilterSerializer]),
    retrieve=extend_schema(tags=["workflows"], parameters=[ORG_SLUG, ID], responses=WorkflowRunDetailSerializer),
)
class WorkflowRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Started workflows: the parent task's status and, in detail, each step's."""

    model = WorkflowRun
    serializer_class = WorkflowRunSerializer
    read_scope = Scope.WORKFLOWS_READ
    write_scope = Scope.WORKFLOWS_WRITE

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return WorkflowRunDetailSerializer if self.action == "retrieve" else WorkflowRunSerializer

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = queryset.select_related("template", "version", "task", "started_by")
        if self.action == "list":
            filters = RunFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            if "workflow" in filters.validated_data:
                queryset = queryset.filter(template_id=filters.validated_data["workflow"])
            if "status" in filters.validated_data:
                queryset = queryset.filter(task__status=filters.validated_data["status"])
        return queryset
