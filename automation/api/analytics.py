"""Analytics API: how the organization's tasks went over a period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrgScopedViewSet
from accounts.roles import Scope
from automation.models import Task
from automation.selectors_analytics import task_analytics

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
MAX_PERIOD = timedelta(days=366)


class AnalyticsQuerySerializer(serializers.Serializer[None]):
    since = serializers.DateTimeField(required=False, help_text="Default: 30 days before until.")
    until = serializers.DateTimeField(required=False, help_text="Default: now.")
    executor = serializers.CharField(required=False, max_length=64)
    source = serializers.CharField(required=False, max_length=16)
    workflow = serializers.IntegerField(required=False, help_text="Only tasks of this workflow id.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since") or until - timedelta(days=30)
        if since >= until:
            raise serializers.ValidationError({"until": ["must be after since"]})
        if until - since > MAX_PERIOD:
            raise serializers.ValidationError({"since": ["the period is at most 366 days"]})
        return {**attrs, "since": since, "until": until}


class CountByExecutorSerializer(serializers.Serializer[None]):
    executor = serializers.CharField()
    failed = serializers.IntegerField()


class DailySerializer(serializers.Serializer[None]):
    day = serializers.DateField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()


class TaskAnalyticsSerializer(serializers.Serializer[None]):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="completed / (completed + failed)")
    mean_duration_seconds = serializers.FloatField(allow_null=True)
    p50_duration_seconds = serializers.FloatField(allow_null=True)
    p95_duration_seconds = serializers.FloatField(allow_null=True)
    failures_by_executor = CountByExecutorSerializer(many=True)
    failed_attempts_by_executor = CountByExecutorSerializer(many=True)
    daily = DailySerializer(many=True)


class AnalyticsViewSet(OrgScopedViewSet):
    """Success rate, mean and p95 duration, and failures by executor of tasks finished in a period."""

    model = Task
    serializer_class = TaskAnalyticsSerializer
    read_scope = Scope.TASKS_READ
    write_scope = Scope.TASKS_READ

    @extend_schema(tags=["analytics"], parameters=[ORG_SLUG, AnalyticsQuerySerializer],
                   responses=TaskAnalyticsSerializer, summary="Task analytics over a period")
    def list(self, request: Request, org_slug: str) -> Response:
        query = AnalyticsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        result = task_analytics(organization=self.organization, **query.validated_data)
        return Response(TaskAnalyticsSerializer(result.as_dict()).data)
