from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.roles import Role
from tools.models import IntegrationCredential, InternalDomain, PaymentBudget, PaymentTransaction, ToolCall
from tools.services.credentials import PROVIDER_FIELDS


class ApprovalPolicySerializer(serializers.Serializer[None]):
    always = serializers.BooleanField()
    below_role = serializers.CharField(allow_null=True)
    amount_over = serializers.IntegerField(allow_null=True)
    outside_domains = serializers.BooleanField()


class ToolSerializer(serializers.Serializer[None]):
    """A tool as a member sees it (never its credentials or configuration)."""

    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    parameters = serializers.JSONField()
    side_effect = serializers.CharField()
    scope = serializers.CharField()
    financial = serializers.BooleanField()
    timeout = serializers.FloatField()
    approval = ApprovalPolicySerializer()
    compensable = serializers.BooleanField()


class InvokeSerializer(serializers.Serializer[None]):
    arguments = serializers.JSONField(help_text="The tool's arguments, matching its parameters.")
    idempotency_key = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200,
        help_text="Retrying with the same key returns the first call's outcome instead of acting again.",
    )
    approval_id = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)

    def validate_arguments(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("arguments must be a JSON object")
        return value


class InvocationSerializer(serializers.Serializer[None]):
    outcome = serializers.CharField()
    code = serializers.CharField()
    reason = serializers.CharField()
    result = serializers.JSONField(allow_null=True)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    tool_call = serializers.IntegerField(allow_null=True)
    approval = serializers.IntegerField(allow_null=True)
    replayed = serializers.BooleanField()


class ToolCallSerializer(serializers.ModelSerializer[ToolCall]):
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = ToolCall
        fields = [
            "id", "tool_name", "side_effect", "actor", "source", "group", "task_id", "step_id", "idempotency_key",
            "arguments", "arguments_hash", "result", "outcome", "reason_code", "reason", "cost_estimate", "cost",
            "amount", "currency", "approval", "duration_ms", "started_at", "finished_at", "compensation_status",
            "compensation_result", "compensated_at", "created_at",
        ]
        read_only_fields = fields


class ToolCallFilterSerializer(serializers.Serializer[None]):
    tool = serializers.CharField(required=False, max_length=64)
    outcome = serializers.CharField(required=False, max_length=16)
    group = serializers.CharField(required=False, max_length=100)


class CompensateSerializer(serializers.Serializer[None]):
    group = serializers.CharField(max_length=100)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class CompensationReportSerializer(serializers.Serializer[None]):
    compensated = serializers.ListField(child=serializers.IntegerField())
    failed = serializers.ListField(child=serializers.IntegerField())
    not_compensable = serializers.ListField(child=serializers.IntegerField())


class CredentialSerializer(serializers.ModelSerializer[IntegrationCredential]):
    """A credential without its secret: only a hint of its last characters."""

    created_by = serializers.EmailField(source="created_by.email", read_only=True, default=None)

    class Meta:
        model = IntegrationCredential
        fields = ["id", "provider", "name", "hint", "key_id", "created_by", "created_at", "rotated_at"]
        read_only_fields = fields


class CredentialCreateSerializer(serializers.Serializer[None]):
    provider = serializers.ChoiceField(choices=sorted(PROVIDER_FIELDS))
    name = serializers.RegexField(r"^[a-z0-9][a-z0-9_-]{0,59}$", required=False, default="default")
    secret = serializers.DictField(child=serializers.CharField(max_length=4096), write_only=True,
                                   help_text="Provider fields, e.g. {\"token\": \"…\"} for github.")


class CredentialRotateSerializer(serializers.Serializer[None]):
    secret = serializers.DictField(child=serializers.CharField(max_length=4096), write_only=True)


class ToolSettingSerializer(serializers.Serializer[None]):
    tool_name = serializers.CharField()
    enabled = serializers.BooleanField()
    min_role = serializers.CharField(allow_null=True)
    approval = serializers.JSONField()
    config = serializers.JSONField()
    effective_approval = ApprovalPolicySerializer()


class ToolSettingUpdateSerializer(serializers.Serializer[None]):
    enabled = serializers.BooleanField(required=False)
    min_role = serializers.CharField(required=False, allow_null=True, max_length=20,
                                     help_text="viewer, member, manager, admin or owner; null for no restriction.")
    approval = serializers.JSONField(required=False, help_text="Overrides: always, below_role, amount_over, "
                                                               "outside_domains.")
    config = serializers.JSONField(required=False)

    def validate_min_role(self, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return int(Role.from_name(value))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class InternalDomainSerializer(serializers.ModelSerializer[InternalDomain]):
    class Meta:
        model = InternalDomain
        fields = ["id", "domain", "created_at"]
        read_only_fields = ["id", "created_at"]


class PaymentBudgetSerializer(serializers.ModelSerializer[PaymentBudget]):
    class Meta:
        model = PaymentBudget
        fields = ["id", "currency", "per_action_limit", "daily_limit", "monthly_limit", "updated_at"]
        read_only_fields = ["id", "updated_at"]
        extra_kwargs = {
            "per_action_limit": {"min_value": 0, "allow_null": True, "required": True},
            "daily_limit": {"min_value": 0, "allow_null": True, "required": True},
            "monthly_limit": {"min_value": 0, "allow_null": True, "required": True},
            "currency": {"validators": []},
        }


class PaymentTransactionSerializer(serializers.ModelSerializer[PaymentTransaction]):
    approver = serializers.CharField(source="approver_label", read_only=True)

    class Meta:
        model = PaymentTransaction
        fields = ["id", "tool_call", "kind", "amount", "currency", "purpose", "vendor", "approver", "provider",
                  "provider_reference", "status", "created_at"]
        read_only_fields = fields


class DownloadQuerySerializer(serializers.Serializer[None]):
    path = serializers.CharField(max_length=1024)
