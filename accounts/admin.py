from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User


class UnscopedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The admin is for staff across organizations: list every row deliberately."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return self.model.objects.dangerously_unscoped()  # type: ignore[attr-defined]


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
    list_filter = ["organization", "action", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["actor_label", "action", "target_label", "request_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
