"""Input and output shapes of the tasks API. Inputs validate at the edge; services do the rest."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from automation.models import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    DependencyFailurePolicy,
    ExecutionType,
    Task,
    TaskEvent,
    TaskRun,
    TaskSource,
    TaskStatus,
)
from automation.services.status import effective_priority
from automation.services.tasks import MAX_RETRIES_LIMIT, TITLE_MAX


def _seconds(value: Any) -> float | None:
    return round(value.total_seconds(), 3) if value is not None else None


class AssigneeSerializer(serializers.Serializer):
    kind = serializers.CharField()
    user = serializers.IntegerField(allow_null=True)
    user_email = serializers.EmailField(allow_null=True)
    ref = serializers.CharField(allow_blank=True)


class TaskSerializer(serializers.ModelSerializer):
    assignee = serializers.SerializerMethodField()
    dependencies = serializers.SerializerMethodField()
    estimated_seconds = serializers.SerializerMethodField()
    actual_seconds = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    last_modified_by = serializers.SerializerMethodField()
    last_event_sequence = serializers.IntegerField(source="event_seq", read_only=True)
    effective_priority = serializers.SerializerMethodField(
        help_text="Priority plus one point per aging interval waited, while queued."
    )

    class Meta:
        model = Task
        fields = [
            "id", "title", "description", "source", "execution_type", "executor", "parameters", "status",
            "priority", "effective_priority", "due_at", "assignee", "parent", "step_key", "dependencies",
            "on_dependency_failure", "run_if_dependency_failed", "release_approved", "ai_confidence",
            "ai_context", "blocked_kind", "blocked_reason", "failure_reason", "retry_count", "max_retries",
            "attempt_count", "estimated_seconds", "actual_seconds", "result", "next_attempt_at", "queued_at",
            "started_at", "blocked_at", "failed_at", "completed_at", "cancelled_at", "created_by",
            "last_modified_by", "created_at", "updated_at", "last_event_sequence",
        ]
        read_only_fields = fields

    @extend_schema_field(AssigneeSerializer(allow_null=True))
    def get_assignee(self, task: Task) -> dict[str, Any] | None:
        if not task.assignee_kind:
            return None
        user = task.assignee_user
        return {"kind": task.assignee_kind, "user": user.pk if user else None,
                "user_email": user.email if user else None, "ref": task.assignee_ref}

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_dependencies(self, task: Task) -> list[int]:
        links = getattr(task, "prefetched_dependencies", None)
        if links is None:
            from automation.models import TaskDependency

            return list(TaskDependency.objects.dangerously_unscoped().filter(task_id=task.pk)
                        .values_list("depends_on_id", flat=True))
        return [link.depends_on_id for link in links]

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_effective_priority(self, task: Task) -> float:
        return effective_priority(task)

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_estimated_seconds(self, task: Task) -> float | None:
        return _seconds(task.estimated_duration)

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_actual_seconds(self, task: Task) -> float | None:
        return _seconds(task.actual_duration)

    @extend_schema_field(OpenApiTypes.EMAIL)
    def get_created_by(self, task: Task) -> str | None:
        return task.created_by.email if task.created_by else None

    @extend_schema_field(OpenApiTypes.EMAIL)
    def get_last_modified_by(self, task: Task) -> str | None:
        return task.last_modified_by.email if task.last_modified_by else None


class _AssigneeInput(serializers.Serializer):
    assignee_user = serializers.IntegerField(required=False, allow_null=True, help_text="A member's user id.")
    assignee_agent = serializers.CharField(required=False, max_length=64, help_text="An agent profile's id.")
    assignee_workflow = serializers.CharField(required=False, max_length=64, help_text="A workflow's id.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in ("assignee_user", "assignee_agent", "assignee_workflow") if attrs.get(k) is not None]
        if len(given) > 1:
            raise serializers.ValidationError({given[1]: ["give one assignee: a user, an agent or a workflow"]})
        return attrs


class TaskCreateSerializer(_AssigneeInput):
    title = serializers.CharField(max_length=TITLE_MAX)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    source = serializers.ChoiceField(choices=TaskSource.choices, default=TaskSource.API)
    execution_type = serializers.ChoiceField(choices=ExecutionType.choices, default=ExecutionType.FULLY_AUTOMATED)
    executor = serializers.CharField(max_length=64, default="noop")
    parameters = serializers.DictField(required=False, default=dict)
    priority = serializers.IntegerField(min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, default=50)
    due_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    parent = serializers.IntegerField(required=False, allow_null=True, default=None)
    depends_on = serializers.ListField(child=serializers.IntegerField(), required=False, default=list,
                                       max_length=500)
    max_retries = serializers.IntegerField(min_value=0, max_value=MAX_RETRIES_LIMIT, required=False)
    step_key = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    on_dependency_failure = serializers.ChoiceField(choices=DependencyFailurePolicy.choices,
                                                    default=DependencyFailurePolicy.SKIP)
    run_if_dependency_failed = serializers.BooleanField(default=False)
    ai_confidence = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    ai_context = serializers.DictField(required=False, default=dict)


class TaskUpdateSerializer(_AssigneeInput):
    title = serializers.CharField(max_length=TITLE_MAX, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    parameters = serializers.DictField(required=False)
    priority = serializers.IntegerField(min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, required=False)
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    max_retries = serializers.IntegerField(min_value=0, max_value=MAX_RETRIES_LIMIT, required=False)
    on_dependency_failure = serializers.ChoiceField(choices=DependencyFailurePolicy.choices, required=False)
    run_if_dependency_failed = serializers.BooleanField(required=False)
    ai_confidence = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    ai_context = serializers.DictField(required=False)
    unassign = serializers.BooleanField(required=False, help_text="Remove the assignee.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if "status" in self.initial_data:
            raise serializers.ValidationError(
                {"status": ["status changes through the actions: execute, cancel, retry, pause, resume, complete"]}
            )
        if not attrs:
            raise serializers.ValidationError({"detail": ["nothing to change"]})
        return attrs


class TaskFilterSerializer(serializers.Serializer):
    status = serializers.CharField(required=False, help_text="One status or several, comma-separated.")
    priority = serializers.IntegerField(required=False, min_value=PRIORITY_MIN, max_value=PRIORITY_MAX)
    priority_min = serializers.IntegerField(required=False, min_value=PRIORITY_MIN, max_value=PRIORITY_MAX)
    priority_max = serializers.IntegerField(required=False, min_value=PRIORITY_MIN, max_value=PRIORITY_MAX)
    assignee = serializers.CharField(
        required=False, help_text="'me', a user id, 'agent:<id>', 'workflow:<id>' or 'none'."
    )
    due_before = serializers.DateTimeField(required=False)
    due_after = serializers.DateTimeField(required=False)
    source = serializers.ChoiceField(choices=TaskSource.choices, required=False)
    executor = serializers.CharField(required=False, max_length=64)
    parent = serializers.IntegerField(required=False)
    q = serializers.CharField(required=False, max_length=200, help_text="Full-text search in title and description.")

    def validate_status(self, value: str) -> list[str]:
        statuses = [s.strip() for s in value.split(",") if s.strip()]
        unknown = [s for s in statuses if s not in TaskStatus.values]
        if unknown or not statuses:
            raise serializers.ValidationError(
                f"unknown status {', '.join(unknown) or value!r}; use {', '.join(TaskStatus.values)}"
            )
        return statuses

    def validate_assignee(self, value: str) -> tuple[str, str]:
        if value in ("me", "none"):
            return value, ""
        if value.isdigit():
            return "user", value
        kind, _, ref = value.partition(":")
        if kind in ("agent", "workflow", "user") and ref:
            return kind, ref
        raise serializers.ValidationError("use 'me', a user id, 'agent:<id>', 'workflow:<id>' or 'none'")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RequiredReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class CompleteSerializer(serializers.Serializer):
    result = serializers.JSONField(required=False, allow_null=True, default=None)


class DependencyInputSerializer(serializers.Serializer):
    depends_on = serializers.IntegerField(help_text="The id of the task to wait for.")


class DependencySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.CharField()


class TaskEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")

    class Meta:
        model = TaskEvent
        fields = ["id", "task", "sequence", "type", "actor", "payload", "created_at"]
        read_only_fields = fields


class EventQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, default=0, help_text="Only events with a higher sequence.")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=200)


class TaskEventPageSerializer(serializers.Serializer):
    results = TaskEventSerializer(many=True)
    next_after = serializers.IntegerField(help_text="Pass as ?after= to continue.")
    has_more = serializers.BooleanField()


class TaskRunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = TaskRun
        fields = [
            "id", "task", "attempt", "status", "executor", "worker", "started_at", "heartbeat_at", "finished_at",
            "duration_seconds", "output", "output_truncated", "log_excerpt", "log_size", "error", "cost",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_duration_seconds(self, run: TaskRun) -> float | None:
        return _seconds(run.duration)


class TaskRunDetailSerializer(TaskRunSerializer):
    log = serializers.SerializerMethodField()
    full_output = serializers.SerializerMethodField()

    class Meta(TaskRunSerializer.Meta):
        fields = [*TaskRunSerializer.Meta.fields, "traceback", "log", "full_output"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_log(self, run: TaskRun) -> str:
        full = self.context.get("full_log")
        return full.text if full is not None else run.log_excerpt

    @extend_schema_field(OpenApiTypes.STR)
    def get_full_output(self, run: TaskRun) -> str | None:
        full = self.context.get("full_log")
        return full.output_text if full is not None and full.output_text else None
