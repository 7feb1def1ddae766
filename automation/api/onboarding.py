"""Onboarding API: one request sentence starts the employee-onboarding workflow (or previews what it would start)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrgScopedViewSet
from accounts.roles import Scope
from automation.api.workflows import WorkflowRunDetailSerializer
from automation.models import WorkflowRun
from automation.onboarding import (
    MAX_TEXT,
    OnboardingRequest,
    OnboardingRequestIncomplete,
    onboarding_request_parse,
    onboarding_request_start,
)

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")


class OnboardingRequestSerializer(serializers.Serializer[None]):
    text = serializers.CharField(
        max_length=MAX_TEXT,
        help_text="e.g. 'Onboard Maria Lopez as QA engineer starting 1 March, reporting to Dana'",
    )


class OnboardingPreviewSerializer(serializers.Serializer[None]):
    inputs = serializers.DictField(child=serializers.CharField(), help_text="The workflow inputs read from the text.")
    manager_is_member = serializers.BooleanField()
    email_derived = serializers.BooleanField(help_text="The work email was made from the name and the domain.")


class OnboardingStartedSerializer(OnboardingPreviewSerializer):
    run = WorkflowRunDetailSerializer()


def _read(request: OnboardingRequest) -> dict[str, Any]:
    return {"inputs": request.inputs(), "manager_is_member": request.manager_user is not None,
            "email_derived": request.email_derived}


def _incomplete(exc: OnboardingRequestIncomplete) -> Response:
    body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
    body.update({name: [message] for name, message in exc.problems.items()})
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


class OnboardingViewSet(OrgScopedViewSet):
    """Start onboarding a new employee from one sentence (parsed without a language model)."""

    model = WorkflowRun
    serializer_class = OnboardingRequestSerializer
    read_scope = Scope.WORKFLOWS_READ
    write_scope = Scope.TASKS_WRITE
    action_scopes = {"preview": Scope.WORKFLOWS_READ}

    @extend_schema(tags=["workflows"], parameters=[ORG_SLUG], request=OnboardingRequestSerializer,
                   responses={201: OnboardingStartedSerializer, 400: OpenApiTypes.OBJECT},
                   summary="Start the onboarding workflow from a request sentence")
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = OnboardingRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            started, parsed = onboarding_request_start(organization=self.organization, actor=request.user,
                                                       text=incoming.validated_data["text"])
        except OnboardingRequestIncomplete as exc:
            return _incomplete(exc)
        body = {**_read(parsed), "run": WorkflowRunDetailSerializer(started.run).data}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["workflows"], parameters=[ORG_SLUG], request=OnboardingRequestSerializer,
                   responses={200: OnboardingPreviewSerializer, 400: OpenApiTypes.OBJECT},
                   summary="Read a request sentence into onboarding inputs without starting anything")
    @action(detail=False, methods=["post"])
    def preview(self, request: Request, org_slug: str) -> Response:
        incoming = OnboardingRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            parsed = onboarding_request_parse(organization=self.organization, text=incoming.validated_data["text"])
        except OnboardingRequestIncomplete as exc:
            return _incomplete(exc)
        return Response(OnboardingPreviewSerializer(_read(parsed)).data)
