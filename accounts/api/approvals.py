"""Approvals API: the queue of an organization's requests, and decisions on them."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.authentication import request_api_key
from accounts.api.base import OrgScopedViewSet
from accounts.models import ApprovalRequest, ApprovalStatus
from accounts.roles import Scope
from accounts.services.approvals import approval_decide

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")


class ApprovalSerializer(serializers.ModelSerializer[ApprovalRequest]):
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)
    decided_by = serializers.EmailField(source="decided_by.email", read_only=True, default=None)
    cost_estimate = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True, allow_null=True)

    class Meta:
        model = ApprovalRequest
        fields = [
            "id", "kind", "subject_type", "subject_id", "title", "reason", "requested_by",
            "cost_estimate", "currency", "arguments", "arguments_hash", "financial", "required_scope",
            "status", "decided_by", "decision_reason", "decided_at", "expires_at", "created_at",
        ]
        read_only_fields = fields


class ApprovalFilterSerializer(serializers.Serializer[None]):
    status = serializers.ChoiceField(choices=ApprovalStatus.choices, required=False)
    kind = serializers.CharField(required=False, max_length=40)
    subject_type = serializers.CharField(required=False, max_length=100)
    subject_id = serializers.CharField(required=False, max_length=64)


class ApproveSerializer(serializers.Serializer[None]):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RejectSerializer(serializers.Serializer[None]):
    reason = serializers.CharField(max_length=2000, help_text="Why it is rejected; required.")


@extend_schema_view(
    list=extend_schema(tags=["approvals"], parameters=[ORG_SLUG, ApprovalFilterSerializer]),
    retrieve=extend_schema(tags=["approvals"], parameters=[ORG_SLUG]),
)
class ApprovalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Approval requests, newest first; approve or reject a pending one."""

    model = ApprovalRequest
    serializer_class = ApprovalSerializer
    read_scope = Scope.APPROVALS_READ
    write_scope = Scope.APPROVALS_DECIDE
    action_scopes = {"approve": Scope.APPROVALS_DECIDE, "reject": Scope.APPROVALS_DECIDE}

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = queryset.select_related("decided_by")
        if self.action != "list":
            return queryset
        filters = ApprovalFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return queryset.filter(**filters.validated_data)

    def _decide(self, request: Request, *, approve: bool, reason: str) -> Response:
        approval = self.get_object()
        scopes = self.scopes if request_api_key(request) is not None else None
        approval = approval_decide(approval=approval, actor=request.user, approve=approve, reason=reason,
                                   scopes=scopes)
        approval.refresh_from_db()
        return Response(ApprovalSerializer(approval).data)

    @extend_schema(tags=["approvals"], parameters=[ORG_SLUG], request=ApproveSerializer, responses=ApprovalSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, org_slug: str, pk: str) -> Response:
        incoming = ApproveSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        return self._decide(request, approve=True, reason=incoming.validated_data["reason"])

    @extend_schema(tags=["approvals"], parameters=[ORG_SLUG], request=RejectSerializer, responses=ApprovalSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, org_slug: str, pk: str) -> Response:
        incoming = RejectSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        return self._decide(request, approve=False, reason=incoming.validated_data["reason"])
