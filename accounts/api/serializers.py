from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization
from accounts.roles import Role, Scope


class RoleField(serializers.ChoiceField):
    """A role by name (``owner``, ``admin``, ``manager``, ``member``, ``viewer``)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(choices=[r.slug for r in Role], **kwargs)  # type: ignore[arg-type]

    def to_internal_value(self, data: object) -> int:
        return int(Role.from_name(super().to_internal_value(data)))

    def to_representation(self, value: int) -> str:
        return Role(value).slug


class OrganizationSerializer(serializers.ModelSerializer[Organization]):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "slug", "name", "timezone", "created_at", "role"]
        read_only_fields = ["id", "created_at", "role"]

    def get_role(self, obj: Organization) -> str | None:
        roles: dict[int, int] = self.context.get("roles", {})
        role = roles.get(obj.pk)
        return Role(role).slug if role else None


class OrganizationCreateSerializer(serializers.Serializer[None]):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=60, required=False, allow_blank=True)
    timezone = serializers.CharField(max_length=64, required=False, default="UTC")


class OrganizationUpdateSerializer(serializers.Serializer[None]):
    name = serializers.CharField(max_length=200, required=False)
    timezone = serializers.CharField(max_length=64, required=False)


class MembershipSerializer(serializers.ModelSerializer[Membership]):
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)
    role = RoleField()

    class Meta:
        model = Membership
        fields = ["id", "email", "full_name", "role", "created_at"]
        read_only_fields = ["id", "email", "full_name", "created_at"]


class MembershipRoleSerializer(serializers.Serializer[None]):
    role = RoleField()


class InvitationSerializer(serializers.ModelSerializer[Invitation]):
    role = RoleField()
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None)
    status = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "invited_by", "status", "expires_at", "created_at"]
        read_only_fields = fields

    def get_status(self, obj: Invitation) -> str:
        from django.utils import timezone

        if obj.accepted_at:
            return "accepted"
        if obj.revoked_at:
            return "revoked"
        return "expired" if obj.expires_at <= timezone.now() else "open"


class InvitationCreateSerializer(serializers.Serializer[None]):
    email = serializers.EmailField()
    role = RoleField(required=False, default=Role.MEMBER)


class InvitationCreatedSerializer(InvitationSerializer):
    accept_url = serializers.CharField(read_only=True)

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "accept_url"]
        read_only_fields = fields


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    created_by = serializers.EmailField(source="created_by.email", read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer[None]):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(Scope.all())), allow_empty=False, max_length=len(Scope.all())
    )


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret; shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id", "actor", "action", "target_type", "target_id", "target_label",
            "before", "after", "ip_address", "request_id", "created_at",
        ]
        read_only_fields = fields


class AuditFilterSerializer(serializers.Serializer[None]):
    actor = serializers.EmailField(required=False)
    action = serializers.CharField(required=False, max_length=100)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since > until:  # type: ignore[operator]
            raise serializers.ValidationError({"until": ["must not be before since"]})
        return attrs
