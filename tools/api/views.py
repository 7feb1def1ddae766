"""Tools API: the tools a member may use, invoking them, their calls, settings, credentials and budgets."""

from __future__ import annotations

import mimetypes
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.authentication import request_api_key
from accounts.api.base import OrgScopedMixin, OrgScopedViewSet
from accounts.roles import Role, Scope
from tools.api import serializers as s
from tools.errors import ToolError
from tools.models import IntegrationCredential, InternalDomain, PaymentBudget, PaymentTransaction, ToolCall, ToolSetting
from tools.policy import effective_policy
from tools.registry import Tool, registry
from tools.selectors import tools_available_to
from tools.services import budgets, credentials
from tools.services import settings as tool_settings
from tools.services.compensation import compensate_group
from tools.services.invocation import InvocationResult, invoke_tool
from tools.storage import OrgStorage, PathRefused, split_path
from tools.types import InvocationContext, Outcome

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
TOOL_NAME = OpenApiParameter("tool_name", str, OpenApiParameter.PATH, description="The tool's name.")
NOT_FOUND = "Not found."

# Refusal codes and the status each is answered with (any other refusal: 422).
REFUSAL_STATUS = {
    "invalid_arguments": status.HTTP_400_BAD_REQUEST,
    "forbidden": status.HTTP_403_FORBIDDEN,
    "tool_disabled": status.HTTP_403_FORBIDDEN,
    "unknown_tool": status.HTTP_404_NOT_FOUND,
    "not_configured": status.HTTP_409_CONFLICT,
    "over_budget": status.HTTP_409_CONFLICT,
    "idempotency_conflict": status.HTTP_409_CONFLICT,
}


def _scopes_for_call(view: OrgScopedMixin, request: Request) -> frozenset[str] | None:
    return view.scopes if request_api_key(request) is not None else None


def _tool_data(tool: Tool, setting: ToolSetting | None) -> dict[str, Any]:
    return {
        "name": tool.name,
        "title": tool.title or tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "side_effect": tool.side_effect,
        "scope": tool.scope,
        "financial": tool.financial,
        "timeout": tool.timeout,
        "approval": effective_policy(tool, setting).as_dict(),
        "compensable": tool.compensation is not None,
    }


def invocation_response(result: InvocationResult) -> Response:
    body = {
        "outcome": result.outcome,
        "code": result.code,
        "reason": result.reason,
        "result": result.result if result.ok or result.replayed else None,
        "errors": result.errors,
        "tool_call": result.tool_call.pk if result.tool_call is not None else None,
        "approval": result.approval.pk if result.approval is not None else None,
        "replayed": result.replayed,
    }
    if result.outcome == Outcome.SUCCEEDED:
        code = status.HTTP_200_OK
    elif result.outcome == Outcome.NEEDS_APPROVAL:
        code = status.HTTP_202_ACCEPTED
    elif result.outcome in (Outcome.FAILED, Outcome.TIMED_OUT):
        code = status.HTTP_502_BAD_GATEWAY
    elif result.outcome in (Outcome.RUNNING, Outcome.REJECTED) or result.code.startswith("approval_"):
        code = status.HTTP_409_CONFLICT
    else:
        code = REFUSAL_STATUS.get(result.code, status.HTTP_422_UNPROCESSABLE_ENTITY)
    return Response(body, status=code)


@extend_schema(tags=["tools"], parameters=[ORG_SLUG])
class ToolViewSet(OrgScopedMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """The tools the caller may use here (what a model acting for them is shown), and invoking one."""

    read_scope = Scope.TOOLS_READ
    write_scope = Scope.TOOLS_READ  # each tool's own scope is checked by the invocation pipeline
    serializer_class = s.ToolSerializer
    lookup_field = "tool_name"
    lookup_value_regex = r"[^/]+"

    def _available(self, request: Request) -> list[Tool]:
        assert self.membership is not None
        return tools_available_to(self.membership, scopes=_scopes_for_call(self, request))

    def _settings(self) -> dict[str, ToolSetting]:
        return {t.tool_name: t for t in ToolSetting.objects.for_org(self.organization)}

    @extend_schema(responses=s.ToolSerializer(many=True))
    def list(self, request: Request, org_slug: str) -> Response:
        settings_by_name = self._settings()
        data = [_tool_data(t, settings_by_name.get(t.name)) for t in self._available(request)]
        return Response(s.ToolSerializer(data, many=True).data)

    @extend_schema(parameters=[TOOL_NAME], responses=s.ToolSerializer)
    def retrieve(self, request: Request, org_slug: str, tool_name: str) -> Response:
        tool = next((t for t in self._available(request) if t.name == tool_name), None)
        if tool is None:
            raise exceptions.NotFound(NOT_FOUND)
        return Response(s.ToolSerializer(_tool_data(tool, self._settings().get(tool.name))).data)

    @extend_schema(
        parameters=[TOOL_NAME],
        request=s.InvokeSerializer,
        responses={
            200: s.InvocationSerializer,
            202: OpenApiResponse(s.InvocationSerializer, description="Waiting for approval."),
            400: OpenApiResponse(s.InvocationSerializer, description="Arguments do not match the parameters."),
            403: OpenApiResponse(s.InvocationSerializer, description="The caller may not use this tool."),
            409: OpenApiResponse(s.InvocationSerializer, description="Budget, approval or idempotency conflict."),
            422: OpenApiResponse(s.InvocationSerializer, description="Refused by the tool (SSRF, path, command…)."),
            502: OpenApiResponse(s.InvocationSerializer, description="The tool ran and failed or timed out."),
        },
    )
    @action(detail=True, methods=["post"])
    def invoke(self, request: Request, org_slug: str, tool_name: str) -> Response:
        if registry.get(tool_name) is None:
            raise exceptions.NotFound(NOT_FOUND)
        incoming = s.InvokeSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        result = invoke_tool(
            organization=self.organization,
            actor=request.user,
            tool_name=tool_name,
            arguments=data["arguments"],
            idempotency_key=data["idempotency_key"],
            approval=data["approval_id"],
            context=InvocationContext(source="api", scopes=_scopes_for_call(self, request)),
        )
        return invocation_response(result)


@extend_schema_view(
    list=extend_schema(tags=["tools"], parameters=[ORG_SLUG, s.ToolCallFilterSerializer]),
    retrieve=extend_schema(tags=["tools"], parameters=[ORG_SLUG]),
)
class ToolCallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Tool calls, newest first: a member sees their own; audit readers see everyone's."""

    model = ToolCall
    serializer_class = s.ToolCallSerializer
    read_scope = Scope.TOOLS_READ
    write_scope = Scope.TOOLS_MANAGE

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if Scope.AUDIT_READ not in self.scopes:
            queryset = queryset.filter(actor=self.request.user)
        if self.action != "list":
            return queryset
        filters = s.ToolCallFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        if "tool" in f:
            queryset = queryset.filter(tool_name=f["tool"])
        if "outcome" in f:
            queryset = queryset.filter(outcome=f["outcome"])
        if "group" in f:
            queryset = queryset.filter(group=f["group"])
        return queryset

    @extend_schema(tags=["tools"], parameters=[ORG_SLUG], request=s.CompensateSerializer,
                   responses=s.CompensationReportSerializer)
    @action(detail=False, methods=["post"])
    def compensate(self, request: Request, org_slug: str) -> Response:
        """Undo the succeeded calls of a group, newest first (a rolled-back piece of work)."""
        incoming = s.CompensateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        report = compensate_group(organization=self.organization, group=incoming.validated_data["group"],
                                  actor=request.user, reason=incoming.validated_data["reason"])
        return Response(s.CompensationReportSerializer(report).data)


@extend_schema(tags=["tools"], parameters=[ORG_SLUG])
class ToolSettingViewSet(OrgScopedMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Every registered tool's settings in this organization; admins change them."""

    read_scope = Scope.TOOLS_MANAGE
    write_scope = Scope.TOOLS_MANAGE
    serializer_class = s.ToolSettingSerializer
    lookup_field = "tool_name"
    lookup_value_regex = r"[^/]+"

    def _data(self, tool: Tool, setting: ToolSetting | None) -> dict[str, Any]:
        return {
            "tool_name": tool.name,
            "enabled": setting.enabled if setting else tool.enabled_by_default,
            "min_role": Role(setting.min_role).slug if setting and setting.min_role else None,
            "approval": setting.approval if setting else {},
            "config": setting.config if setting else {},
            "effective_approval": effective_policy(tool, setting).as_dict(),
        }

    @extend_schema(responses=s.ToolSettingSerializer(many=True))
    def list(self, request: Request, org_slug: str) -> Response:
        found = {t.tool_name: t for t in ToolSetting.objects.for_org(self.organization)}
        return Response([self._data(tool, found.get(tool.name)) for tool in registry.all()])

    @extend_schema(parameters=[TOOL_NAME], responses=s.ToolSettingSerializer)
    def retrieve(self, request: Request, org_slug: str, tool_name: str) -> Response:
        tool = registry.get(tool_name)
        if tool is None:
            raise exceptions.NotFound(NOT_FOUND)
        setting = ToolSetting.objects.for_org(self.organization).filter(tool_name=tool_name).first()
        return Response(self._data(tool, setting))

    @extend_schema(parameters=[TOOL_NAME], request=s.ToolSettingUpdateSerializer, responses=s.ToolSettingSerializer)
    def partial_update(self, request: Request, org_slug: str, tool_name: str) -> Response:
        tool = registry.get(tool_name)
        if tool is None:
            raise exceptions.NotFound(NOT_FOUND)
        incoming = s.ToolSettingUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        setting = tool_settings.tool_setting_update(organization=self.organization, actor=request.user,
                                                    tool_name=tool_name, **incoming.validated_data)
        return Response(self._data(tool, setting))


@extend_schema_view(
    list=extend_schema(tags=["tools"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["tools"], parameters=[ORG_SLUG]),
)
class CredentialViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Integration credentials: secrets go in, never come out (only a hint of the last characters)."""

    model = IntegrationCredential
    serializer_class = s.CredentialSerializer
    read_scope = Scope.TOOLS_MANAGE
    write_scope = Scope.TOOLS_MANAGE

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related("created_by")

    @extend_schema(tags=["tools"], parameters=[ORG_SLUG], request=s.CredentialCreateSerializer,
                   responses={201: s.CredentialSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = s.CredentialCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        credential = credentials.credential_create(organization=self.organization, actor=request.user,
                                                   **incoming.validated_data)
        return Response(s.CredentialSerializer(credential).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["tools"], parameters=[ORG_SLUG], request=s.CredentialRotateSerializer,
                   responses=s.CredentialSerializer)
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, org_slug: str, pk: str) -> Response:
        credential = self.get_object()
        incoming = s.CredentialRotateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        credential = credentials.credential_rotate(credential=credential, actor=request.user,
                                                   secret=incoming.validated_data["secret"])
        return Response(s.CredentialSerializer(credential).data)

    @extend_schema(tags=["tools"], parameters=[ORG_SLUG], responses={204: None})
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        credentials.credential_delete(credential=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(tags=["tools"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["tools"], parameters=[ORG_SLUG]),
)
class InternalDomainViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The organization's own email domains (mail elsewhere asks for approval)."""

    model = InternalDomain
    serializer_class = s.InternalDomainSerializer
    read_scope = Scope.TOOLS_READ
    write_scope = Scope.TOOLS_MANAGE

    @extend_schema(tags=["tools"], parameters=[ORG_SLUG], request=s.InternalDomainSerializer,
                   responses={201: s.InternalDomainSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = s.InternalDomainSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        domain = tool_settings.internal_domain_add(organization=self.organization, actor=request.user,
                                                   domain=incoming.validated_data["domain"])
        return Response(s.InternalDomainSerializer(domain).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["tools"], parameters=[ORG_SLUG], responses={204: None})
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        tool_settings.internal_domain_remove(domain=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(tags=["payments"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["payments"], parameters=[ORG_SLUG]),
)
class PaymentBudgetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Payment budgets per currency (minor units; empty means no limit of that kind)."""

    model = PaymentBudget
    serializer_class = s.PaymentBudgetSerializer
    read_scope = Scope.TOOLS_FINANCIAL
    write_scope = Scope.TOOLS_FINANCIAL

    @extend_schema(tags=["payments"], parameters=[ORG_SLUG], request=s.PaymentBudgetSerializer,
                   responses={200: s.PaymentBudgetSerializer})
    def create(self, request: Request, org_slug: str) -> Response:
        """Set the budget of a currency (created or replaced)."""
        incoming = s.PaymentBudgetSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        budget = budgets.payment_budget_set(organization=self.organization, actor=request.user,
                                            **incoming.validated_data)
        return Response(s.PaymentBudgetSerializer(budget).data)


@extend_schema_view(
    list=extend_schema(tags=["payments"], parameters=[ORG_SLUG]),
    retrieve=extend_schema(tags=["payments"], parameters=[ORG_SLUG]),
)
class PaymentTransactionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The transaction log: every payment and refund, with purpose, vendor and approver."""

    model = PaymentTransaction
    serializer_class = s.PaymentTransactionSerializer
    read_scope = Scope.TOOLS_FINANCIAL
    write_scope = Scope.TOOLS_FINANCIAL


@extend_schema(tags=["tools"], parameters=[ORG_SLUG])
class FileDownloadViewSet(OrgScopedMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Download a file of the organization's storage (the links documents and files tools return)."""

    read_scope = Scope.TOOLS_READ
    write_scope = Scope.TOOLS_READ
    serializer_class = s.DownloadQuerySerializer

    @extend_schema(parameters=[s.DownloadQuerySerializer],
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=False, methods=["get"])
    def download(self, request: Request, org_slug: str) -> HttpResponse:
        query = s.DownloadQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        path = query.validated_data["path"]
        try:
            name = split_path(path)[-1]
            data = OrgStorage(self.organization.pk).read(path, limit=50 * 1024 * 1024)
        except PathRefused as exc:
            raise exceptions.ValidationError({"path": [exc.message]}) from exc
        except ToolError as exc:
            raise exceptions.NotFound(NOT_FOUND) from exc
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = HttpResponse(data, content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(True, name)
        response["X-Content-Type-Options"] = "nosniff"
        return response
