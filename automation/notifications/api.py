"""Notification preferences API: each kind in the bell or not, by email at once, daily or never."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrgScopedMixin
from accounts.roles import Scope
from automation.notifications.models import EmailMode, NotificationKind
from automation.notifications.preferences import Channels, preferences_for, preferences_update
from automation.notifications.services import digest_hour

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")


class PreferenceSerializer(serializers.Serializer[None]):
    kind = serializers.ChoiceField(choices=NotificationKind.choices)
    label = serializers.CharField(read_only=True)
    in_app = serializers.BooleanField(required=False, help_text="Show it in the bell.")
    email = serializers.ChoiceField(choices=EmailMode.choices, required=False,
                                    help_text="Email it at once, in the daily digest, or not at all.")


class PreferencesSerializer(serializers.Serializer[None]):
    preferences = PreferenceSerializer(many=True)
    digest_hour = serializers.IntegerField(read_only=True, help_text="Local hour the daily digest is sent.")


class PreferencesUpdateSerializer(serializers.Serializer[None]):
    preferences = PreferenceSerializer(many=True, allow_empty=False)


def _render(preferences: dict[str, Channels]) -> dict[str, object]:
    labels = dict(NotificationKind.choices)
    return {
        "preferences": [{"kind": kind, "label": labels[kind], "in_app": c.in_app, "email": c.email}
                        for kind, c in preferences.items()],
        "digest_hour": digest_hour(),
    }


@extend_schema(tags=["notifications"], parameters=[ORG_SLUG])
class NotificationPreferenceViewSet(OrgScopedMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """The caller's own notification preferences in this organization (every member sets their own)."""

    read_scope = Scope.ORG_READ
    write_scope = Scope.ORG_READ
    serializer_class = PreferencesSerializer

    @extend_schema(responses=PreferencesSerializer)
    def list(self, request: Request, org_slug: str) -> Response:
        return Response(_render(preferences_for(organization=self.organization, user_id=request.user.pk)))

    @extend_schema(request=PreferencesUpdateSerializer, responses=PreferencesSerializer)
    def update_all(self, request: Request, org_slug: str) -> Response:
        """Change some kinds' channels; kinds not named keep theirs."""
        incoming = PreferencesUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        preferences = preferences_update(organization=self.organization, user=request.user,
                                         changes=incoming.validated_data["preferences"])
        return Response(_render(preferences))
