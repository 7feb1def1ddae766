"""Admin site: inbound mail (the quarantine, with release and delete actions) and personal addresses."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import UnscopedAdmin
from accounts.errors import ServiceError
from automation.email_in.services import inbound_delete, inbound_release
from automation.models import InboundMemberAddress, InboundMessage, InboundStatus


class InboundMessageAdmin(UnscopedAdmin):
    list_display = ["received_at", "organization", "status", "reason", "sender", "recipient", "subject", "task"]
    list_filter = ["status", "reason", "channel"]
    search_fields = ["sender", "subject", "message_id", "recipient"]
    exclude = ["raw"]
    actions = ["release", "discard"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).defer("raw").select_related("organization", "task")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name != "raw"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # "delete" discards the content and keeps the record: use the action

    def _decide(self, request: HttpRequest, queryset: QuerySet[Any], decide: Any, verb: str) -> None:
        done = 0
        for message in queryset.filter(status=InboundStatus.QUARANTINED):
            try:
                decide(message=InboundMessage.objects.dangerously_unscoped().get(pk=message.pk), actor=request.user)
                done += 1
            except ServiceError as exc:
                self.message_user(request, f"{message}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} message(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Release: make the selected quarantined messages into tasks")
    def release(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._decide(request, queryset, inbound_release, "released")

    @admin.action(description="Delete the content of the selected quarantined messages")
    def discard(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._decide(request, queryset, inbound_delete, "deleted")


class InboundMemberAddressAdmin(UnscopedAdmin):
    list_display = ["organization", "user", "created_at", "rotated_at"]
    exclude = ["token"]
    readonly_fields = ["organization", "user", "created_at", "rotated_at"]


def register() -> None:
    if not admin.site.is_registered(InboundMessage):
        admin.site.register(InboundMessage, InboundMessageAdmin)
        admin.site.register(InboundMemberAddress, InboundMemberAddressAdmin)
