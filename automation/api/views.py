"""Tasks API: input serializer → one service call → output serializer."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import NOT_FOUND, OrgScopedViewSet
from accounts.errors import InvalidInput
from accounts.models import Membership, User
from accounts.roles import Scope
from automation import selectors
from automation.api import serializers as s
from automation.executors import get_executor
from automation.models import AssigneeKind, Task
from automation.services import tasks as task_services
from automation.services.tasks import Assignee

ORG_SLUG = OpenApiParameter("org_slug", str, OpenApiParameter.PATH, description="The organization's slug.")
TASK_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The task's id.")
TAGS = ["tasks"]


class TaskExecutionSerializer(s.TaskSerializer):
    """A task as ``execute`` leaves it, with how it is run."""

    execution = serializers.JSONField(
        read_only=True,
        help_text='{"strategy": "immediate" | "decompose" | "blocked", "status", …}: done now with its "result", '
                  'run as "subtasks" (each with its execution type), or blocked with what it "needs".',
    )

    class Meta(s.TaskSerializer.Meta):
        fields = [*s.TaskSerializer.Meta.fields, "execution"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(tags=TAGS, parameters=[ORG_SLUG, s.TaskFilterSerializer],
                       summary="List tasks, filtered and searched"),
    retrieve=extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], summary="A task"),
)
class TaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The organization's tasks, their events, runs and dependencies, and the actions on them."""

    model = Task
    serializer_class = s.TaskSerializer
    read_scope = Scope.TASKS_READ
    write_scope = Scope.TASKS_WRITE
    action_scopes = {
        "execute": Scope.TASKS_EXECUTE,
        "retry": Scope.TASKS_EXECUTE,
        "resume": Scope.TASKS_EXECUTE,
        "start": Scope.TASKS_EXECUTE,
    }

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.action == "list":
            filters = s.TaskFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            queryset = selectors.tasks_filter(
                queryset, organization=self.organization, user=self.request.user, **filters.validated_data
            )
        return selectors.tasks_for_listing(queryset, organization=self.organization)

    # --- helpers ------------------------------------------------------------------

    def _member(self, user_id: int, field: str) -> User:
        membership = Membership.objects.for_org(self.organization).select_related("user").filter(
            user_id=user_id
        ).first()
        if membership is None:
            raise InvalidInput(f"user {user_id} is not a member of this organization", field=field)
        return membership.user

    def _assignee(self, data: dict[str, Any]) -> tuple[bool, User | Assignee | None]:
        if data.get("assignee_user") is not None:
            return True, self._member(data["assignee_user"], "assignee_user")
        if data.get("assignee_agent"):
            return True, Assignee(kind=AssigneeKind.AGENT, ref=data["assignee_agent"])
        if data.get("assignee_workflow"):
            return True, Assignee(kind=AssigneeKind.WORKFLOW, ref=data["assignee_workflow"])
        return False, None

    def _task(self) -> Task:
        return self.get_object()

    def _out(self, task: Task, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.tasks_for_listing(Task.objects.for_org(self.organization), organization=self.organization)
        return Response(s.TaskSerializer(fresh.get(pk=task.pk)).data, status=code)

    # --- create and update ------------------------------------------------------

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG], request=s.TaskCreateSerializer,
                   responses={201: s.TaskSerializer}, summary="Create a task (queued at once if it can run)")
    def create(self, request: Request, org_slug: str) -> Response:
        incoming = s.TaskCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        _, assignee = self._assignee(data)
        for key in ("assignee_user", "assignee_agent", "assignee_workflow"):
            data.pop(key, None)
        parent = data.pop("parent")
        task = task_services.task_create(
            organization=self.organization, actor=request.user, assignee=assignee,
            parent=parent, **data,
        )
        return self._out(task, status.HTTP_201_CREATED)

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], request=s.TaskUpdateSerializer,
                   responses=s.TaskSerializer, summary="Change a task's fields (not its status)")
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        task = self._task()
        incoming = s.TaskUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        given, assignee = self._assignee(data)
        for key in ("assignee_user", "assignee_agent", "assignee_workflow"):
            data.pop(key, None)
        if data.pop("unassign", False):
            data["assignee"] = None
        elif given:
            data["assignee"] = assignee
        task = task_services.task_update(task=task, actor=request.user, **data)
        return self._out(task)

    # --- actions ----------------------------------------------------------------------

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], request=None, responses=TaskExecutionSerializer,
                   summary="Run the task's executor (now, or when its dependencies complete), with its strategy")
    @action(detail=True, methods=["post"])
    def execute(self, request: Request, org_slug: str, pk: str) -> Response:
        task = self._task()
        # An executor may decide how to run the task itself (the AI workforce plans it first); it answers with
        # the strategy: immediate (done now, with the result), decompose (subtasks) or blocked (what it needs).
        decide = getattr(get_executor(task.executor), "execute_strategy", None)
        if callable(decide):
            execution = decide(task=task, actor=request.user)
        else:
            task = task_services.task_execute(task=task, actor=request.user)
            execution = {"strategy": "decompose" if task.executor == "subflow" else "immediate",
                         "status": task.status}
        response = self._out(task)
        response.data = {**response.data, "execution": execution}
        return response

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], request=s.ReasonSerializer,
                   responses=s.TaskSerializer, summary="Cancel the task and its unfinished subtasks")
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, org_slug: str, pk: str) -> Response:
        incoming = s.ReasonSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        return self._out(task_services.task_cancel(task=self._task(), actor=request.user,
                                                   reason=incoming.validated_data["reason"]))

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], request=None, responses=s.TaskSerializer,
                   summary="Run a failed task again; what it held up waits for it again")
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, org_slug: str, pk: str) -> Response:
        return self._out(task_services.task_retry(task=self._task(), actor=request.user))

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], request=None, responses=s.TaskSerializer,
                   summary="Hold a pending or queued task")
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, org_slug: str, pk: str) -> Response:
        return self._out(task_services.task_pause(task=self._task(), actor=request.user))

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], request=s.ReasonSerializer,
                   responses=s.TaskSerializer, summary="Resume a paused or parked task")
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, org_slug: str, pk: str) -> Response:
        incoming = s.ReasonSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        return self._out(task_services.task_resume(task=self._task(), actor=request.user,
                                                   reason=incoming.validated_data["reason"]))

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], request=None, responses=s.TaskSerializer,
                   summary="Start a manual task")
    @action(detail=True, methods=["post"])
    def start(self, request: Request, org_slug: str, pk: str) -> Response:
        return self._out(task_services.task_start(task=self._task(), actor=request.user))

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], request=s.CompleteSerializer,
                   responses=s.TaskSerializer, summary="Complete a manual or parked task")
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, org_slug: str, pk: str) -> Response:
        incoming = s.CompleteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        return self._out(task_services.task_complete(task=self._task(), actor=request.user,
                                                     result=incoming.validated_data["result"]))

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], request=s.RequiredReasonSerializer,
                   responses=s.TaskSerializer, summary="Fail a manual or parked task, saying why")
    @action(detail=True, methods=["post"])
    def fail(self, request: Request, org_slug: str, pk: str) -> Response:
        incoming = s.RequiredReasonSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        return self._out(task_services.task_fail(task=self._task(), actor=request.user,
                                                 reason=incoming.validated_data["reason"]))

    # --- events, runs, dependencies --------------------------------------------------

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID, s.EventQuerySerializer],
                   responses=s.TaskEventPageSerializer,
                   summary="The task's execution log; pass ?after=<sequence> to replay from a point")
    @action(detail=True, methods=["get"])
    def events(self, request: Request, org_slug: str, pk: str) -> Response:
        task = self._task()
        query = s.EventQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows, more = selectors.task_events_after(task=task, **query.validated_data)
        next_after = rows[-1].sequence if rows else query.validated_data["after"]
        return Response({"results": s.TaskEventSerializer(rows, many=True).data, "next_after": next_after,
                         "has_more": more})

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], responses=s.TaskRunSerializer(many=True),
                   summary="The task's execution attempts")
    @action(detail=True, methods=["get"])
    def runs(self, request: Request, org_slug: str, pk: str) -> Response:
        return Response(s.TaskRunSerializer(selectors.task_runs(task=self._task()), many=True).data)

    @extend_schema(
        tags=TAGS,
        parameters=[ORG_SLUG, TASK_ID, OpenApiParameter("attempt", int, OpenApiParameter.PATH)],
        responses=s.TaskRunDetailSerializer,
        summary="One attempt with its full log and output",
    )
    @action(detail=True, methods=["get"], url_path=r"runs/(?P<attempt>\d+)", url_name="run-detail")
    def run_detail(self, request: Request, org_slug: str, pk: str, attempt: str) -> Response:
        run = selectors.task_runs(task=self._task()).filter(attempt=int(attempt)).first()
        if run is None:
            raise NotFound(NOT_FOUND)
        context = {"full_log": selectors.task_run_log(run=run)}
        return Response(s.TaskRunDetailSerializer(run, context=context).data)

    @extend_schema(tags=TAGS, parameters=[ORG_SLUG, TASK_ID], request=s.DependencyInputSerializer,
                   responses={200: s.DependencySerializer(many=True), 201: s.DependencySerializer(many=True)},
                   summary="List the tasks this one waits for, or add one (a cycle is refused, named)")
    @action(detail=True, methods=["get", "post"])
    def dependencies(self, request: Request, org_slug: str, pk: str) -> Response:
        task = self._task()
        code = status.HTTP_200_OK
        if request.method == "POST":
            incoming = s.DependencyInputSerializer(data=request.data)
            incoming.is_valid(raise_exception=True)
            task = task_services.dependency_add(task=task, depends_on=incoming.validated_data["depends_on"],
                                                actor=request.user)
            code = status.HTTP_201_CREATED
        rows = selectors.task_dependencies(task=task).values("id", "title", "status")
        return Response(s.DependencySerializer(rows, many=True).data, status=code)

    @extend_schema(
        tags=TAGS,
        parameters=[ORG_SLUG, TASK_ID, OpenApiParameter("depends_on", int, OpenApiParameter.PATH)],
        request=None,
        responses={204: None},
        summary="Stop waiting for a task",
    )
    @action(detail=True, methods=["delete"], url_path=r"dependencies/(?P<depends_on>\d+)",
            url_name="dependency-detail")
    def remove_dependency(self, request: Request, org_slug: str, pk: str, depends_on: str) -> Response:
        task = self._task()
        if not Task.objects.for_org(self.organization).filter(pk=int(depends_on)).exists():
            raise NotFound(NOT_FOUND)
        task_services.dependency_remove(task=task, depends_on=int(depends_on), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
