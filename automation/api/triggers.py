"""Triggers API, and the public endpoint that receives signed webhook calls."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from accounts.api.base import OrgScopedViewSet
from accounts.roles import Scope
from automation.api.schedules import TaskTemplateSerializer
from automation.models import Trigger, TriggerDelivery
from automation.services import triggers as trigger_services

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The trigger's id.")


class TriggerSerializer(serializers.ModelSerializer[Trigger]):
    task = TaskTemplateSerializer(source="*", read_only=True)
    webhook_url = serializers.SerializerMethodField()

    class Meta:
        model = Trigger
        fields = [
            "id", "name", "kind", "event_name", "conditions", "enabled", "webhook_url", "last_fired_at",
            "fire_count", "task", "created_at", "updated_at",
        ]
        read_only_fields = fields

    def get_webhook_url(self, trigger: Trigger) -> str | None:
        if trigger.kind != "webhook":
            return None
        path = reverse("trigger-webhook", kwargs={"public_id": trigger.public_id})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class TriggerIssuedSerializer(TriggerSerializer):
    secret = serializers.CharField(read_only=True, allow_null=True,
                                   help_text="The webhook secret; shown only in this response.")

    class Meta(TriggerSerializer.Meta):
        fields = [*TriggerSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class TriggerCreateSerializer(serializers.Serializer[None]):
    name = serializers.CharField(max_length=200)
    kind = serializers.CharField(max_length=16, help_text="webhook, task_completed, task_failed or event.")
    event_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    conditions = serializers.JSONField(required=False, default=dict)
    enabled = serializers.BooleanField(required=False, default=True)
    task_title = serializers.CharField(max_length=300)
    task_description = serializers.CharField(required=False, allow_blank=True, default="")
    task_executor = serializers.CharField(max_length=64, required=False, default="noop")
    task_parameters = serializers.JSONField(required=False, default=dict)
    task_execution_type = serializers.CharField(max_length=16, required=False, default="fully_automated")
    task_priority = serializers.IntegerField(required=False, default=50)


class TriggerUpdateSerializer(serializers.Serializer[None]):
    name = serializers.CharField(max_length=200, required=False)
    event_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    conditions = serializers.JSONField(required=False)
    enabled = serializers.BooleanField(required=False)
    task_title = serializers.CharField(max_length=300, required=False)
    task_description = serializers.CharField(required=False, allow_blank=True)
    task_executor = serializers.CharField(max_length=64, required=False)
    task_parameters = serializers.JSONField(required=False)
    task_execution_type = serializers.CharField(max_length=16, required=False)
    task_priority = serializers.IntegerField(required=False)


class TriggerDeliverySerializer(serializers.ModelSerializer[TriggerDelivery]):
    class Meta:
        model = TriggerDelivery
        fields = ["id", "received_at", "source_task", "payload", "task", "depth"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(tags=["triggers"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["triggers"], parameters=[ORG_SLUG, ID]),
)
class TriggerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Triggers: each creates a task from its template on a webhook call, a task's outcome or a named event."""

    model = Trigger
    serializer_class = TriggerSerializer
    read_scope = Scope.SCHEDULES_READ
    write_scope = Scope.SCHEDULES_WRITE
    action_scopes = {"deliveries": Scope.SCHEDULES_READ}

    @extend_schema(tags=["triggers"], parameters=[ORG_SLUG], request=TriggerCreateSerializer,
                   responses={201: TriggerIssuedSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = TriggerCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        issued = trigger_services.trigger_create(organization=self.organization, actor=request.user,
                                                 **incoming.validated_data)
        issued.trigger.secret = issued.secret  # type: ignore[attr-defined]
        data = TriggerIssuedSerializer(issued.trigger, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["triggers"], parameters=[ORG_SLUG, ID], request=TriggerUpdateSerializer,
                   responses=TriggerSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        trigger = self.get_object()
        incoming = TriggerUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        trigger = trigger_services.trigger_update(trigger=trigger, actor=request.user, **incoming.validated_data)
        return Response(TriggerSerializer(trigger, context={"request": request}).data)

    @extend_schema(tags=["triggers"], parameters=[ORG_SLUG, ID], responses={204: None})
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        trigger_services.trigger_delete(trigger=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(tags=["triggers"], parameters=[ORG_SLUG, ID], request=None,
                   responses=TriggerIssuedSerializer, summary="Replace a webhook trigger's secret")
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, org_slug: str, pk: str) -> Response:
        issued = trigger_services.trigger_rotate_secret(trigger=self.get_object(), actor=request.user)
        issued.trigger.secret = issued.secret  # type: ignore[attr-defined]
        return Response(TriggerIssuedSerializer(issued.trigger, context={"request": request}).data)

    @extend_schema(tags=["triggers"], parameters=[ORG_SLUG, ID], responses=TriggerDeliverySerializer(many=True),
                   summary="The trigger's recent firings, newest first")
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, org_slug: str, pk: str) -> Response:
        trigger = self.get_object()
        rows = TriggerDelivery.objects.for_org(self.organization).filter(trigger=trigger).order_by("-received_at")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(TriggerDeliverySerializer(page, many=True).data)


class WebhookThrottle(AnonRateThrottle):
    """At most 1,200 calls a minute per trigger and caller address."""

    scope = "trigger_webhook"
    rate = "1200/minute"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        # Per trigger and caller address.
        ident = f"{view.kwargs.get('public_id')}:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class WebhookView(APIView):
    """POST a JSON body signed with the trigger's secret.

    Headers: ``X-Staffer-Timestamp: <unix seconds>`` and ``X-Staffer-Signature:
    sha256=<hex HMAC-SHA256 of "<timestamp>." + raw body>``. 202 with the task
    created; 401 bad or stale signature; 409 a replayed call; 404 no such trigger.
    """

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [WebhookThrottle]

    @extend_schema(
        tags=["triggers"],
        parameters=[
            OpenApiParameter("public_id", str, OpenApiParameter.PATH, description="The trigger's webhook id."),
            OpenApiParameter("X-Staffer-Timestamp", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-Staffer-Signature", str, OpenApiParameter.HEADER, required=True),
        ],
        request={"application/json": {"type": "object"}},
        responses={202: inline_serializer("WebhookAccepted", {"task": serializers.IntegerField(),
                                                              "delivery": serializers.IntegerField()})},
        auth=[],
        summary="Fire a webhook trigger",
    )
    def post(self, request: Request, public_id: str) -> Response:
        delivery = trigger_services.webhook_receive(
            public_id=public_id,
            body=request.body,
            signature=request.headers.get(trigger_services.SIGNATURE_HEADER, ""),
            timestamp=request.headers.get(trigger_services.TIMESTAMP_HEADER, ""),
        )
        return Response({"task": delivery.task_id, "delivery": delivery.pk}, status=status.HTTP_202_ACCEPTED)
