"""Schedules, reminders and in-app notifications API: input serializer → one service call → output."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrgScopedViewSet
from accounts.roles import Scope
from automation.models import Notification, Reminder, Schedule, ScheduleFiring
from automation.notifications.push import unread_count
from automation.services import schedules as schedule_services
from automation.services import schedules_reminders as reminder_services

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The row's id.")


# --- serializers ---------------------------------------------------------------------------


class TaskTemplateSerializer(serializers.Serializer[None]):
    title = serializers.CharField(source="task_title")
    description = serializers.CharField(source="task_description")
    executor = serializers.CharField(source="task_executor")
    parameters = serializers.JSONField(source="task_parameters")
    execution_type = serializers.CharField(source="task_execution_type")
    priority = serializers.IntegerField(source="task_priority")


class ScheduleSerializer(serializers.ModelSerializer[Schedule]):
    task = TaskTemplateSerializer(source="*", read_only=True)

    class Meta:
        model = Schedule
        fields = [
            "id", "name", "kind", "cron_expression", "timezone", "interval_seconds", "run_at", "event_name",
            "next_run_at", "missed_run_policy", "max_catch_up", "enabled", "last_run_at", "run_count", "last_task",
            "last_error", "task", "created_at", "updated_at",
        ]
        read_only_fields = fields


class _TimingInput(serializers.Serializer[None]):
    kind = serializers.CharField(max_length=10, help_text="cron, interval, one_off or event.")
    cron_expression = serializers.CharField(max_length=120, required=False, allow_blank=True)
    timezone = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                     help_text="IANA time zone; default: the organization's.")
    interval_seconds = serializers.IntegerField(required=False, allow_null=True)
    run_at = serializers.DateTimeField(required=False, allow_null=True,
                                       help_text="One-off time, or the first interval run.")
    missed_run_policy = serializers.CharField(max_length=10, required=False,
                                              help_text="skip, run_once (default) or catch_up.")
    max_catch_up = serializers.IntegerField(required=False)


class ScheduleCreateSerializer(_TimingInput):
    name = serializers.CharField(max_length=200)
    event_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False, default=True)
    task_title = serializers.CharField(max_length=300)
    task_description = serializers.CharField(required=False, allow_blank=True)
    task_executor = serializers.CharField(max_length=64, required=False, default="noop")
    task_parameters = serializers.JSONField(required=False, default=dict)
    task_execution_type = serializers.CharField(max_length=16, required=False, default="fully_automated")
    task_priority = serializers.IntegerField(required=False, default=50)


class ScheduleUpdateSerializer(ScheduleCreateSerializer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for item in self.fields.values():
            item.required = False
            if hasattr(item, "default"):
                item.default = serializers.empty


class ScheduleFiringSerializer(serializers.ModelSerializer[ScheduleFiring]):
    class Meta:
        model = ScheduleFiring
        fields = ["id", "scheduled_for", "fired_at", "task", "error"]
        read_only_fields = fields


class RunNowSerializer(serializers.Serializer[None]):
    task = serializers.IntegerField()


def _service_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    if "timezone" in data:
        data["timezone_name"] = data.pop("timezone")
    return data


# --- schedules -----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(tags=["schedules"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["schedules"], parameters=[ORG_SLUG, ID]),
)
class ScheduleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The organization's schedules: each creates a task from its template when it fires."""

    model = Schedule
    serializer_class = ScheduleSerializer
    read_scope = Scope.SCHEDULES_READ
    write_scope = Scope.SCHEDULES_WRITE
    action_scopes = {"firings": Scope.SCHEDULES_READ, "run_now": Scope.TASKS_WRITE}

    @extend_schema(tags=["schedules"], parameters=[ORG_SLUG], request=ScheduleCreateSerializer,
                   responses={201: ScheduleSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = ScheduleCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        schedule = schedule_services.schedule_create(
            organization=self.organization, actor=request.user, **_service_kwargs(incoming.validated_data)
        )
        return Response(ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["schedules"], parameters=[ORG_SLUG, ID], request=ScheduleUpdateSerializer,
                   responses=ScheduleSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        schedule = self.get_object()
        incoming = ScheduleUpdateSerializer(data=request.data, partial=True)
        incoming.is_valid(raise_exception=True)
        schedule = schedule_services.schedule_update(schedule=schedule, actor=request.user,
                                                     **dict(incoming.validated_data))
        return Response(ScheduleSerializer(schedule).data)

    @extend_schema(tags=["schedules"], parameters=[ORG_SLUG, ID], responses={204: None})
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        schedule_services.schedule_delete(schedule=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(tags=["schedules"], parameters=[ORG_SLUG, ID], request=None, responses={201: RunNowSerializer},
                   summary="Create the schedule's task now (its timing is unchanged)")
    @action(detail=True, methods=["post"], url_path="run-now")
    def run_now(self, request: Request, org_slug: str, pk: str) -> Response:
        task = schedule_services.schedule_run_now(schedule=self.get_object(), actor=request.user)
        return Response({"task": task.pk}, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["schedules"], parameters=[ORG_SLUG, ID], responses=ScheduleFiringSerializer(many=True),
                   summary="The schedule's recent firings, newest first")
    @action(detail=True, methods=["get"])
    def firings(self, request: Request, org_slug: str, pk: str) -> Response:
        schedule = self.get_object()
        rows = ScheduleFiring.objects.for_org(self.organization).filter(schedule=schedule).order_by(
            "-scheduled_for"
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(ScheduleFiringSerializer(page, many=True).data)


# --- reminders and notifications -----------------------------------------------------------


class ReminderSerializer(serializers.ModelSerializer[Reminder]):
    user = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Reminder
        fields = [
            "id", "user", "title", "message", "kind", "cron_expression", "timezone", "interval_seconds", "run_at",
            "next_run_at", "missed_run_policy", "max_catch_up", "enabled", "last_run_at", "run_count", "created_at",
        ]
        read_only_fields = fields


class ReminderCreateSerializer(_TimingInput):
    title = serializers.CharField(max_length=200)
    message = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.CharField(max_length=10, required=False, default="one_off",
                                 help_text="one_off (default), cron or interval.")


class ReminderUpdateSerializer(ReminderCreateSerializer):
    enabled = serializers.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for item in self.fields.values():
            item.required = False
            if hasattr(item, "default"):
                item.default = serializers.empty


@extend_schema_view(
    list=extend_schema(tags=["reminders"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["reminders"], parameters=[ORG_SLUG, ID]),
)
class ReminderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The caller's own reminders (one-off or recurring), delivered as in-app notifications."""

    model = Reminder
    serializer_class = ReminderSerializer
    read_scope = Scope.ORG_READ
    write_scope = Scope.ORG_READ

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(user=self.request.user).select_related("user")

    @extend_schema(tags=["reminders"], parameters=[ORG_SLUG], request=ReminderCreateSerializer,
                   responses={201: ReminderSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = ReminderCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        reminder = reminder_services.reminder_create(
            organization=self.organization, actor=request.user, **_service_kwargs(incoming.validated_data)
        )
        return Response(ReminderSerializer(reminder).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["reminders"], parameters=[ORG_SLUG, ID], request=ReminderUpdateSerializer,
                   responses=ReminderSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        reminder = self.get_object()
        incoming = ReminderUpdateSerializer(data=request.data, partial=True)
        incoming.is_valid(raise_exception=True)
        reminder = reminder_services.reminder_update(reminder=reminder, actor=request.user,
                                                     **dict(incoming.validated_data))
        return Response(ReminderSerializer(reminder).data)

    @extend_schema(tags=["reminders"], parameters=[ORG_SLUG, ID], responses={204: None})
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        reminder_services.reminder_delete(reminder=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "message", "link", "task", "data", "reminder", "scheduled_for", "read_at",
                  "created_at"]
        read_only_fields = fields


class UnreadCountSerializer(serializers.Serializer[None]):
    unread = serializers.IntegerField(help_text="The caller's unread notifications (the bell's number).")


class NotificationFilterSerializer(serializers.Serializer[None]):
    unread = serializers.BooleanField(required=False, help_text="Only unread notifications.")


class MarkedSerializer(serializers.Serializer[None]):
    marked = serializers.IntegerField()


@extend_schema_view(
    list=extend_schema(tags=["reminders"], parameters=[ORG_SLUG, NotificationFilterSerializer]),
    retrieve=extend_schema(tags=["reminders"], parameters=[ORG_SLUG, ID]),
)
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The caller's in-app notifications, newest first."""

    model = Notification
    serializer_class = NotificationSerializer
    read_scope = Scope.ORG_READ
    write_scope = Scope.ORG_READ

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = queryset.filter(user=self.request.user, in_app=True)
        if self.action == "list":
            filters = NotificationFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            if filters.validated_data.get("unread"):
                queryset = queryset.filter(read_at__isnull=True)
        return queryset

    @extend_schema(tags=["reminders"], parameters=[ORG_SLUG, ID], request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, org_slug: str, pk: str) -> Response:
        notification = reminder_services.notification_mark_read(notification=self.get_object(), user=request.user)
        return Response(NotificationSerializer(notification).data)

    @extend_schema(tags=["reminders"], parameters=[ORG_SLUG], request=None, responses=MarkedSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request, org_slug: str) -> Response:
        marked = reminder_services.notifications_mark_all_read(organization=self.organization, user=request.user)
        return Response({"marked": marked})

    @extend_schema(tags=["reminders"], parameters=[ORG_SLUG], responses=UnreadCountSerializer)
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request: Request, org_slug: str) -> Response:
        """The number on the bell (the socket ws/orgs/{org_slug}/notifications/ pushes its changes)."""
        return Response({"unread": unread_count(organization_id=self.organization.pk, user_id=request.user.pk)})
