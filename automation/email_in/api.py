"""Email-in API: the inbound addresses, and the quarantine (admins: list, look, release, delete)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrgScopedMixin, OrgScopedViewSet
from accounts.roles import Scope
from automation.email_in import conf
from automation.email_in.addresses import organization_address, personal_address
from automation.email_in.parsing import parse_message
from automation.email_in.services import inbound_delete, inbound_release, member_address, member_address_rotate
from automation.models import InboundAttachment, InboundMessage, InboundStatus, QuarantineReason

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The inbound message's id.")
PREVIEW = 5000


# --- addresses -------------------------------------------------------------------------------


class InboundAddressesSerializer(serializers.Serializer[None]):
    domain = serializers.CharField()
    organization_address = serializers.EmailField(help_text="Mail from members to it becomes a task.")
    personal_address = serializers.EmailField(help_text="Yours: mail from members to it becomes a task assigned "
                                                        "to you. Keep it to yourself; rotate it if it leaks.")
    max_message_bytes = serializers.IntegerField()
    max_attachment_bytes = serializers.IntegerField()
    allowed_attachment_types = serializers.ListField(child=serializers.CharField())


@extend_schema(tags=["email-in"], parameters=[ORG_SLUG])
class InboundAddressViewSet(OrgScopedMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """The organization's inbound address and the caller's personal one."""

    read_scope = Scope.TASKS_READ
    write_scope = Scope.TASKS_WRITE
    serializer_class = InboundAddressesSerializer

    def _addresses(self, token: str) -> dict[str, Any]:
        slug = self.organization.slug
        return {
            "domain": conf.domain(),
            "organization_address": organization_address(slug),
            "personal_address": personal_address(slug, token),
            "max_message_bytes": conf.max_message_bytes(),
            "max_attachment_bytes": conf.max_attachment_bytes(),
            "allowed_attachment_types": list(conf.allowed_attachment_types()),
        }

    @extend_schema(responses=InboundAddressesSerializer)
    def list(self, request: Request, org_slug: str) -> Response:
        address = member_address(organization=self.organization, user=request.user)
        return Response(InboundAddressesSerializer(self._addresses(address.token)).data)

    @extend_schema(request=None, responses=InboundAddressesSerializer)
    @action(detail=False, methods=["post"])
    def rotate(self, request: Request, org_slug: str) -> Response:
        """Give the caller a new personal address; the old one stops working at once."""
        address = member_address_rotate(organization=self.organization, user=request.user)
        return Response(InboundAddressesSerializer(self._addresses(address.token)).data)


# --- quarantine ------------------------------------------------------------------------------


class InboundAttachmentSerializer(serializers.ModelSerializer[InboundAttachment]):
    class Meta:
        model = InboundAttachment
        fields = ["id", "filename", "content_type", "size", "sha256", "path", "note"]
        read_only_fields = fields


class InboundMessageSerializer(serializers.ModelSerializer[InboundMessage]):
    decided_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    attachments = InboundAttachmentSerializer(many=True, read_only=True)

    class Meta:
        model = InboundMessage
        fields = [
            "id", "message_id", "channel", "recipient", "sender", "sender_name", "envelope_sender", "subject",
            "status", "reason", "reason_detail", "verdicts", "metadata", "size", "task", "attachments",
            "decided_by", "decided_at", "received_at",
        ]
        read_only_fields = fields


class QuarantinedAttachmentSerializer(serializers.Serializer[None]):
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()


class InboundMessageDetailSerializer(InboundMessageSerializer):
    text = serializers.SerializerMethodField(help_text="The start of the body, as plain text (quarantined only).")
    quarantined_attachments = serializers.SerializerMethodField()

    class Meta(InboundMessageSerializer.Meta):
        fields = [*InboundMessageSerializer.Meta.fields, "text", "quarantined_attachments"]
        read_only_fields = fields

    def _mail(self, message: InboundMessage) -> Any:
        if not message.raw:
            return None
        cache = self.context.setdefault("parsed", {})
        if message.pk not in cache:
            cache[message.pk] = parse_message(bytes(message.raw), envelope_sender=message.envelope_sender or None)
        return cache[message.pk]

    def get_text(self, message: InboundMessage) -> str:
        mail = self._mail(message)
        return mail.text[:PREVIEW] if mail is not None else ""

    @extend_schema_field(QuarantinedAttachmentSerializer(many=True))
    def get_quarantined_attachments(self, message: InboundMessage) -> list[dict[str, Any]]:
        mail = self._mail(message)
        if mail is None:
            return []
        return [{"filename": a.filename, "content_type": a.content_type, "size": a.size} for a in mail.attachments]


class QuarantineFilterSerializer(serializers.Serializer[None]):
    status = serializers.ChoiceField(
        choices=[*InboundStatus.values, "all"], required=False, default=InboundStatus.QUARANTINED,
        help_text="Which messages: quarantined (the default), another status, or all.",
    )
    reason = serializers.ChoiceField(choices=QuarantineReason.values, required=False)


@extend_schema_view(
    list=extend_schema(tags=["email-in"], parameters=[ORG_SLUG, QuarantineFilterSerializer]),
    retrieve=extend_schema(tags=["email-in"], parameters=[ORG_SLUG, ID], responses=InboundMessageDetailSerializer),
)
class QuarantineViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Inbound mail held back, with the reason; admins release it (it becomes a task) or delete it."""

    model = InboundMessage
    serializer_class = InboundMessageSerializer
    read_scope = Scope.MEMBERS_MANAGE
    write_scope = Scope.MEMBERS_MANAGE

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = queryset.select_related("decided_by").prefetch_related("attachments")
        if self.action == "list":
            filters = QuarantineFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            wanted = filters.validated_data["status"]
            if wanted != "all":
                queryset = queryset.filter(status=wanted)
            if filters.validated_data.get("reason"):
                queryset = queryset.filter(reason=filters.validated_data["reason"])
            queryset = queryset.defer("raw")
        return queryset

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return InboundMessageDetailSerializer if self.action == "retrieve" else InboundMessageSerializer

    @extend_schema(tags=["email-in"], parameters=[ORG_SLUG, ID], request=None,
                   responses=InboundMessageSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, org_slug: str, pk: str) -> Response:
        """Accept a quarantined message: it becomes a task (or a comment on the task it answers)."""
        message = inbound_release(message=self.get_object(), actor=request.user)
        message.refresh_from_db()
        return Response(InboundMessageSerializer(message).data)

    @extend_schema(tags=["email-in"], parameters=[ORG_SLUG, ID], responses={204: None})
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        """Discard a quarantined message (its content is erased; the record stays)."""
        inbound_delete(message=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
