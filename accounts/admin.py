from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from accounts.errors import NotFound, ServiceError
from accounts.models import (
    ApiKey,
    ApprovalRequest,
    ApprovalStatus,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    User,
)
from accounts.services.approvals import approval_decide


class UnscopedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The admin is for staff across organizations: list every row deliberately."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return self.model.objects.dangerously_unscoped()  # type: ignore[attr-defined]


class ReadOnlyAdmin(UnscopedAdmin):
    """Rows change only through their services: the admin lists and shows them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    list_filter = ["is_staff", "is_active"]
    filter_horizontal = ["groups", "user_permissions"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "slug", "timezone", "created_at"]
    search_fields = ["name", "slug"]


@admin.register(Membership)
class MembershipAdmin(UnscopedAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__email"]
    raw_id_fields = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(UnscopedAdmin):
    list_display = ["email", "organization", "role", "expires_at", "accepted_at", "revoked_at"]
    exclude = ["token_hash"]
    readonly_fields = ["organization", "email", "role", "invited_by", "expires_at", "accepted_at", "accepted_by"]


@admin.register(ApiKey)
class ApiKeyAdmin(UnscopedAdmin):
    list_display = ["name", "prefix", "organization", "created_by", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]
    readonly_fields = ["organization", "name", "prefix", "scopes", "created_by", "last_used_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(UnscopedAdmin):
    """Read-only: audit events are never changed."""

    list_display = ["created_at", "organization", "actor_label", "action", "target_type", "target_label", "ip_address"]
    list_filter = ["organization", "action", "target_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["actor_label", "action", "target_label", "request_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Approvals queue -------------------------------------------------------------------


class ApprovalDecisionForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False, max_length=2000)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(UnscopedAdmin):
    """The approvals queue. Decisions go through the approvals service: the same
    rules hold here as in the API (membership with the required scope in the
    approval's organization, no self-approval of financial actions)."""

    list_display = [
        "created_at", "organization", "kind", "title", "requested_by_label", "cost_estimate", "currency",
        "financial", "status", "decided_by", "expires_at",
    ]
    list_filter = ["status", "kind", "financial", "organization", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["title", "reason", "requested_by_label", "subject_id", "arguments_hash"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    actions = ["approve_selected", "reject_selected"]
    readonly_fields = [
        "organization", "kind", "subject_type", "subject_id", "title", "reason", "requested_by",
        "requested_by_label", "cost_estimate", "currency", "arguments", "arguments_hash", "financial",
        "required_scope", "status", "decided_by", "decision_reason", "decided_at", "expires_at", "notified_at",
        "created_at", "updated_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("organization", "decided_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Approve selected requests", permissions=["change"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        return self._decide(request, queryset, approve=True)

    @admin.action(description="Reject selected requests", permissions=["change"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        return self._decide(request, queryset, approve=False)

    def _decide(self, request: HttpRequest, queryset: QuerySet[Any], *, approve: bool) -> TemplateResponse | None:
        verb = "approve" if approve else "reject"
        pending = queryset.filter(status=ApprovalStatus.PENDING)
        if "apply" not in request.POST:
            return TemplateResponse(
                request,
                "admin/accounts/approvalrequest/decide.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"{verb.capitalize()} approval requests",
                    "verb": verb,
                    "action": f"{verb}_selected",
                    "approvals": list(pending),
                    "skipped": queryset.count() - pending.count(),
                    "form": ApprovalDecisionForm(),
                    "opts": self.model._meta,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        form = ApprovalDecisionForm(request.POST)
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        done = 0
        for approval in pending:
            try:
                approval_decide(approval=approval, actor=request.user, approve=approve, reason=reason)  # type: ignore[arg-type]
            except NotFound:
                self.message_user(
                    request,
                    f"{approval.title}: only a member of {approval.organization} with the "
                    f"{approval.required_scope} scope can decide it",
                    messages.ERROR,
                )
            except ServiceError as exc:
                self.message_user(request, f"{approval.title}: {exc.message}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} request(s) {verb}d.", messages.SUCCESS)
        return None
