from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import serializers as s
from accounts.api.authentication import request_api_key
from accounts.api.base import OrgScopedMixin, OrgScopedViewSet
from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization
from accounts.roles import Scope
from accounts.selectors import organizations_for_user
from accounts.services import api_keys, invitations, members, organizations

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")


def _roles_of(request: Request) -> dict[int, int]:
    return dict(
        Membership.objects.dangerously_unscoped().filter(user=request.user).values_list("organization_id", "role")
    )


@extend_schema(tags=["organizations"])
class OrganizationListViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    """The caller's organizations; creating one makes the caller its owner."""

    serializer_class = s.OrganizationSerializer

    @extend_schema(responses=s.OrganizationSerializer(many=True))
    def list(self, request: Request) -> Response:
        api_key = request_api_key(request)
        queryset: QuerySet[Organization] = organizations_for_user(request.user)
        if api_key is not None:
            queryset = queryset.filter(pk=api_key.organization_id)
        page = self.paginate_queryset(queryset)
        data = s.OrganizationSerializer(page, many=True, context={"roles": _roles_of(request)}).data
        return self.get_paginated_response(data)

    @extend_schema(request=s.OrganizationCreateSerializer, responses={201: s.OrganizationSerializer})
    def create(self, request: Request) -> Response:
        if request_api_key(request) is not None:
            return Response({"detail": "API keys cannot create organizations.", "code": "permission_denied"},
                            status=status.HTTP_403_FORBIDDEN)
        incoming = s.OrganizationCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        organization = organizations.organization_create(user=request.user, **incoming.validated_data)
        data = s.OrganizationSerializer(organization, context={"roles": _roles_of(request)}).data
        return Response(data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["organizations"], parameters=[ORG_SLUG])
class OrganizationDetailViewSet(OrgScopedMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    read_scope = Scope.ORG_READ
    write_scope = Scope.ORG_WRITE
    serializer_class = s.OrganizationSerializer

    @extend_schema(responses=s.OrganizationSerializer)
    def retrieve(self, request: Request, org_slug: str) -> Response:
        return Response(s.OrganizationSerializer(self.organization, context={"roles": _roles_of(request)}).data)

    @extend_schema(request=s.OrganizationUpdateSerializer, responses=s.OrganizationSerializer)
    def partial_update(self, request: Request, org_slug: str) -> Response:
        incoming = s.OrganizationUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        organization = organizations.organization_update(
            organization=self.organization, actor=request.user, **incoming.validated_data
        )
        return Response(s.OrganizationSerializer(organization, context={"roles": _roles_of(request)}).data)


@extend_schema_view(
    list=extend_schema(tags=["members"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["members"], parameters=[ORG_SLUG]),
)
class MembershipViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Members of the organization and their roles."""

    model = Membership
    serializer_class = s.MembershipSerializer
    read_scope = Scope.MEMBERS_READ
    write_scope = Scope.MEMBERS_MANAGE

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related("user")

    def required_scope(self, request: Request) -> str:
        # Anyone may leave: removing oneself needs only membership (in person, not with an API key).
        if (
            self.action == "destroy"
            and self.membership
            and request_api_key(request) is None
            and str(self.kwargs.get("pk")) == str(self.membership.pk)
        ):
            return Scope.ORG_READ
        return super().required_scope(request)

    @extend_schema(tags=["members"], parameters=[ORG_SLUG], request=s.MembershipRoleSerializer,
                   responses=s.MembershipSerializer)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        membership = self.get_object()
        incoming = s.MembershipRoleSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        membership = members.membership_change_role(
            membership=membership, actor=request.user, role=incoming.validated_data["role"]
        )
        return Response(s.MembershipSerializer(membership).data)

    @extend_schema(tags=["members"], parameters=[ORG_SLUG], responses={204: None})
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        members.membership_remove(membership=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(tags=["members"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["members"], parameters=[ORG_SLUG]),
)
class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Invitations by email. The accept link is returned once, on creation."""

    model = Invitation
    serializer_class = s.InvitationSerializer
    read_scope = Scope.MEMBERS_MANAGE
    write_scope = Scope.MEMBERS_MANAGE

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related("invited_by")

    @extend_schema(tags=["members"], parameters=[ORG_SLUG], request=s.InvitationCreateSerializer,
                   responses={201: s.InvitationCreatedSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = s.InvitationCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        issued = invitations.invitation_create(
            organization=self.organization, actor=request.user, **incoming.validated_data
        )
        issued.invitation.accept_url = request.build_absolute_uri(issued.accept_path)  # type: ignore[attr-defined]
        return Response(s.InvitationCreatedSerializer(issued.invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["members"], parameters=[ORG_SLUG], responses={204: None})
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        invitations.invitation_revoke(invitation=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(tags=["api keys"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["api keys"], parameters=[ORG_SLUG]),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """API keys: the secret is shown once; only its hash is kept."""

    model = ApiKey
    serializer_class = s.ApiKeySerializer
    read_scope = Scope.API_KEYS_MANAGE
    write_scope = Scope.API_KEYS_MANAGE

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related("created_by")

    @extend_schema(tags=["api keys"], parameters=[ORG_SLUG], request=s.ApiKeyCreateSerializer,
                   responses={201: s.ApiKeyCreatedSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = s.ApiKeyCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        calling_key = request_api_key(request)
        issued = api_keys.api_key_create(
            organization=self.organization,
            actor=request.user,
            limit_to=frozenset(calling_key.scopes) if calling_key is not None else None,
            **incoming.validated_data,
        )
        issued.api_key.key = issued.secret  # type: ignore[attr-defined]
        return Response(s.ApiKeyCreatedSerializer(issued.api_key).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["api keys"], parameters=[ORG_SLUG], request=None, responses=s.ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, org_slug: str, pk: str) -> Response:
        api_key = api_keys.api_key_revoke(api_key=self.get_object(), actor=request.user)
        return Response(s.ApiKeySerializer(api_key).data)


@extend_schema_view(
    list=extend_schema(tags=["audit"], parameters=[ORG_SLUG, s.AuditFilterSerializer]),
    retrieve=extend_schema(tags=["audit"], parameters=[ORG_SLUG]),
)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The audit log, newest first; filter by actor, action and time range."""

    model = AuditEvent
    serializer_class = s.AuditEventSerializer
    read_scope = Scope.AUDIT_READ
    write_scope = Scope.AUDIT_READ

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.action != "list":
            return queryset
        filters = s.AuditFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        if "actor" in f:
            queryset = queryset.filter(actor_label__iexact=f["actor"])
        if "action" in f:
            queryset = queryset.filter(action__startswith=f["action"])
        if "since" in f:
            queryset = queryset.filter(created_at__gte=f["since"])
        if "until" in f:
            queryset = queryset.filter(created_at__lte=f["until"])
        return queryset
