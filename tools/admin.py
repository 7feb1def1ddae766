"""Read-only admin views of tool calls, the transaction log and credentials (never a secret)."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin
from tools.models import BudgetAlert, IntegrationCredential, PaymentBudget, PaymentTransaction, ToolCall, ToolSetting


@admin.register(ToolCall)
class ToolCallAdmin(ReadOnlyAdmin):
    list_display = ["id", "tool_name", "organization", "actor_label", "outcome", "reason_code", "amount", "currency",
                    "compensation_status", "created_at"]
    list_filter = ["outcome", "side_effect", "compensation_status", "tool_name"]
    search_fields = ["tool_name", "actor_label", "idempotency_key", "group"]


@admin.register(PaymentTransaction)
class PaymentTransactionAdmin(ReadOnlyAdmin):
    list_display = ["id", "organization", "kind", "amount", "currency", "vendor", "purpose", "approver_label",
                    "provider_reference", "status", "created_at"]
    list_filter = ["kind", "currency", "status"]


@admin.register(IntegrationCredential)
class IntegrationCredentialAdmin(ReadOnlyAdmin):
    list_display = ["id", "organization", "provider", "name", "hint", "key_id", "created_at", "rotated_at"]
    exclude = ["nonce", "ciphertext"]


@admin.register(ToolSetting)
class ToolSettingAdmin(ReadOnlyAdmin):
    list_display = ["tool_name", "organization", "enabled", "min_role", "updated_at"]


@admin.register(PaymentBudget)
class PaymentBudgetAdmin(ReadOnlyAdmin):
    list_display = ["organization", "currency", "per_action_limit", "daily_limit", "monthly_limit", "updated_at"]


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdmin):
    list_display = ["organization", "currency", "window", "period_start", "level", "spent", "limit", "created_at"]
