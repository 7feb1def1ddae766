"""Chat API: a member's threads with the assistant, their messages, and the Manager's plans.

``/orgs/{org_slug}/threads/`` lists and creates the caller's own threads;
``/threads/{id}/messages/`` lists messages (``?after=<id>`` to continue from
the last one seen) and posts one (answered in the background: poll with
``?after=`` or listen for ``agents.message`` on the organization's socket).
``/orgs/{org_slug}/plans/`` shows the plans of AI tasks; ``/plans/{id}/edit/``
is a person's version of a plan (approve or reject it with the approvals API).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OrgScopedViewSet
from accounts.roles import Scope
from agents.loop.manager import plan_edit
from agents.models import Message, MessageRole, Plan, PlanStatus, Strategy, Thread
from agents.selectors import messages_after
from agents.services.conversations import MAX_MESSAGE_CHARS, MAX_TITLE_CHARS, message_post, thread_create

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
THREAD_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The thread's id.")
PLAN_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The plan's id.")
TAGS = ["chat"]


class ThreadSerializer(serializers.ModelSerializer[Thread]):
    class Meta:
        model = Thread
        fields = ["id", "title", "pending", "last_message_at", "created_at", "updated_at"]
        read_only_fields = fields


class ThreadCreateSerializer(serializers.Serializer[None]):
    title = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TITLE_CHARS, default="")


class MessageSerializer(serializers.ModelSerializer[Message]):
    role = serializers.ChoiceField(choices=MessageRole.choices, read_only=True)

    class Meta:
        model = Message
        fields = ["id", "thread", "role", "content", "metadata", "task", "created_at"]
        read_only_fields = fields


class MessagePostSerializer(serializers.Serializer[None]):
    content = serializers.CharField(max_length=MAX_MESSAGE_CHARS, trim_whitespace=True)


class MessageQuerySerializer(serializers.Serializer[None]):
    after = serializers.IntegerField(required=False, min_value=0, default=0,
                                     help_text="Only messages with a larger id (the last one you have).")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=200)


class MessagePageSerializer(serializers.Serializer[None]):
    results = MessageSerializer(many=True)
    next_after = serializers.IntegerField()


@extend_schema_view(
    list=extend_schema(tags=TAGS, parameters=[ORG_SLUG], summary="Your threads with the assistant"),
    retrieve=extend_schema(tags=TAGS, parameters=[ORG_SLUG, THREAD_ID], summary="One of your threads"),
)
class ThreadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The caller's own conversations (another member's thread is "not found")."""

    model = Thread
    serializer_class = ThreadSerializer
    read_scope = Scope.AGENTS_USE
    write_scope = Scope.AGENTS_USE

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(user=self.request.user).order_by("-updated_at", "-id")

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG], request=ThreadCreateSerializer,
                   responses={201: ThreadSerializer}, summary="Start a thread")
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = ThreadCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        thread = thread_create(organization=self.organization, user=request.user,
                               title=incoming.validated_data["title"])
        return Response(ThreadSerializer(thread).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], tags=TAGS, parameters=[ORG_SLUG, THREAD_ID, MessageQuerySerializer],
                   responses=MessagePageSerializer, summary="The thread's messages after a given id")
    @extend_schema(methods=["POST"], tags=TAGS, parameters=[ORG_SLUG, THREAD_ID], request=MessagePostSerializer,
                   responses={201: MessageSerializer}, summary="Post a message (answered in the background)")
    @action(detail=True, methods=["get", "post"])
    def messages(self, request: Request, org_slug: str, pk: str) -> Response:
        thread = self.get_object()
        if request.method == "POST":
            incoming = MessagePostSerializer(data=request.data)
            incoming.is_valid(raise_exception=True)
            message = message_post(thread=thread, user=request.user, content=incoming.validated_data["content"])
            return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)
        query = MessageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = messages_after(thread=thread, **query.validated_data)
        next_after = rows[-1].pk if rows else query.validated_data["after"]
        return Response({"results": MessageSerializer(rows, many=True).data, "next_after": next_after})


class PlanSerializer(serializers.ModelSerializer[Plan]):
    status = serializers.ChoiceField(choices=PlanStatus.choices, read_only=True)
    strategy = serializers.ChoiceField(choices=Strategy.choices, read_only=True)

    class Meta:
        model = Plan
        fields = ["id", "task", "version", "status", "strategy", "summary", "steps", "needs", "problems",
                  "author_label", "approval", "scripted", "created_at"]
        read_only_fields = fields


class PlanQuerySerializer(serializers.Serializer[None]):
    task = serializers.IntegerField(required=False, min_value=1, help_text="Only the plans of this task.")


class PlanStepInputSerializer(serializers.Serializer[None]):
    id = serializers.RegexField(r"^[a-z][a-z0-9_]{0,63}$")
    title = serializers.CharField(max_length=300)
    depends_on = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    role = serializers.ChoiceField(choices=["employee", "human"], required=False, default="employee")
    tools = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    success_criteria = serializers.ListField(child=serializers.CharField(max_length=1000), required=False,
                                             default=list)
    estimate_minutes = serializers.FloatField(required=False, min_value=0, default=0)
    needs_approval = serializers.BooleanField(required=False, default=False)
    approver = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    instructions = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")


class PlanEditSerializer(serializers.Serializer[None]):
    summary = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    steps = PlanStepInputSerializer(many=True, allow_empty=False)


@extend_schema_view(
    list=extend_schema(tags=TAGS, parameters=[ORG_SLUG, PlanQuerySerializer], summary="Plans of AI tasks"),
    retrieve=extend_schema(tags=TAGS, parameters=[ORG_SLUG, PLAN_ID], summary="One plan version"),
)
class PlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The Manager's plans, version by version; a person may edit the latest one before it runs."""

    model = Plan
    serializer_class = PlanSerializer
    read_scope = Scope.TASKS_READ
    write_scope = Scope.TASKS_WRITE

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.action == "list":
            query = PlanQuerySerializer(data=self.request.query_params)
            query.is_valid(raise_exception=True)
            if query.validated_data.get("task"):
                queryset = queryset.filter(task_id=query.validated_data["task"])
        return queryset.order_by("-created_at", "-id")

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, PLAN_ID], request=PlanEditSerializer,
                   responses={201: PlanSerializer},
                   summary="Replace the plan with your version (checked like the Manager's; a new version)")
    @action(detail=True, methods=["post"])
    def edit(self, request: Request, org_slug: str, pk: str) -> Response:
        plan = self.get_object()
        incoming = PlanEditSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        new = plan_edit(plan=plan, actor=request.user, steps=[dict(s) for s in data["steps"]],
                        summary=data.get("summary"))
        return Response(PlanSerializer(new).data, status=status.HTTP_201_CREATED)
