"""LLM usage API (read-only): usage summaries and the call records of an organization."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrgScopedViewSet
from accounts.roles import Scope
from agents.llm.selectors import llm_usage_summary
from agents.models import AgentRole, CallOutcome, LLMCall, Locality

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
MAX_PERIOD = timedelta(days=366)


class UsageQuerySerializer(serializers.Serializer[None]):
    since = serializers.DateTimeField(required=False, help_text="Default: 30 days before until.")
    until = serializers.DateTimeField(required=False, help_text="Default: now.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since") or until - timedelta(days=30)
        if since >= until:
            raise serializers.ValidationError({"until": ["must be after since"]})
        if until - since > MAX_PERIOD:
            raise serializers.ValidationError({"since": ["the period is at most 366 days"]})
        return {"since": since, "until": until}


class UsageFiguresSerializer(serializers.Serializer[None]):
    calls = serializers.IntegerField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=18, decimal_places=8)


class UsageTotalsSerializer(UsageFiguresSerializer):
    ok = serializers.IntegerField()
    fallback = serializers.IntegerField(help_text="Answered by another deployment than the first choice.")
    error = serializers.IntegerField()
    refused = serializers.IntegerField(help_text="Stopped by the rate limit or a budget.")


class UsageByModelSerializer(UsageFiguresSerializer):
    model = serializers.CharField()
    deployment = serializers.CharField()
    locality = serializers.ChoiceField(choices=Locality.choices)


class UsageByUserSerializer(UsageFiguresSerializer):
    user_id = serializers.IntegerField(allow_null=True, help_text="Empty: system work.")
    email = serializers.CharField()


class UsageByLocalitySerializer(serializers.Serializer[None]):
    local = UsageFiguresSerializer()
    cloud = UsageFiguresSerializer()
    scripted = UsageFiguresSerializer()


class LocalShareSerializer(serializers.Serializer[None]):
    calls = serializers.FloatField(allow_null=True, help_text="local / (local + cloud) answered calls")
    tokens = serializers.FloatField(allow_null=True, help_text="local / (local + cloud) tokens")


class UsageByDaySerializer(UsageFiguresSerializer):
    day = serializers.DateField()


class UsageSummarySerializer(serializers.Serializer[None]):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    currency = serializers.CharField()
    totals = UsageTotalsSerializer()
    by_model = UsageByModelSerializer(many=True)
    by_user = UsageByUserSerializer(many=True)
    by_locality = UsageByLocalitySerializer()
    local_share = LocalShareSerializer()
    by_day = UsageByDaySerializer(many=True)


class LLMCallSerializer(serializers.ModelSerializer[LLMCall]):
    user_email = serializers.SerializerMethodField()
    agent_role = serializers.ChoiceField(source="role", choices=AgentRole.choices, read_only=True,
                                         help_text="Who asked the model: manager, employee, supervisor, …")

    class Meta:
        model = LLMCall
        fields = [
            "id", "created_at", "user", "user_email", "task_id", "run_id", "agent_role", "purpose", "step_key", "tier",
            "model", "deployment", "locality", "scripted", "scenario", "streamed", "tokens_in", "tokens_out",
            "cost", "currency", "latency_ms", "ttft_ms", "outcome", "error", "attempts",
        ]
        read_only_fields = fields

    def get_user_email(self, call: LLMCall) -> str:
        return call.user.email if call.user_id and call.user else ""


class LLMCallQuerySerializer(serializers.Serializer[None]):
    user = serializers.IntegerField(required=False, min_value=1)
    task_id = serializers.IntegerField(required=False, min_value=1)
    run_id = serializers.IntegerField(required=False, min_value=1)
    agent_role = serializers.ChoiceField(choices=AgentRole.choices, required=False)
    outcome = serializers.ChoiceField(choices=CallOutcome.choices, required=False)
    scripted = serializers.BooleanField(required=False, allow_null=True, default=None)


class LLMUsageViewSet(OrgScopedViewSet):
    """Model usage of the organization over a period: totals, by model, by user, local vs cloud, by day."""

    model = LLMCall
    serializer_class = UsageSummarySerializer
    read_scope = Scope.USAGE_READ
    write_scope = Scope.USAGE_READ

    @extend_schema(tags=["llm"], parameters=[ORG_SLUG, UsageQuerySerializer], responses=UsageSummarySerializer,
                   summary="Model usage and cost over a period")
    def list(self, request: Request, org_slug: str) -> Response:
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        summary = llm_usage_summary(organization=self.organization, **query.validated_data)
        return Response(UsageSummarySerializer(summary).data)


@extend_schema_view(
    list=extend_schema(tags=["llm"], parameters=[ORG_SLUG, LLMCallQuerySerializer], summary="Model calls"),
    retrieve=extend_schema(tags=["llm"], parameters=[ORG_SLUG], summary="One model call"),
)
class LLMCallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Every model call of the organization, newest first, with who asked, what answered and what it cost."""

    model = LLMCall
    serializer_class = LLMCallSerializer
    read_scope = Scope.USAGE_READ
    write_scope = Scope.USAGE_READ

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = queryset.select_related("user")
        if self.action != "list":
            return queryset
        query = LLMCallQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = {k: v for k, v in query.validated_data.items() if v is not None}
        if "user" in filters:
            filters["user_id"] = filters.pop("user")
        if "agent_role" in filters:
            filters["role"] = filters.pop("agent_role")
        return queryset.filter(**filters)
