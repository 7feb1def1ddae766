"""Workflow pages: recent runs, and a run's DAG of subtasks drawn as SVG on the server."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.page_access import OrgAccess, org_page
from accounts.roles import Scope
from automation import selectors_portal as portal
from automation.models import Task, TaskStatus, WorkflowRun
from automation.views.common import render_org
from automation.views.dag_layout import NODE_HEIGHT, label_lines, layout_dag

STATUS_ORDER = [s.value for s in TaskStatus]


def dag_context(graph: portal.TaskGraph, *, org_slug: str) -> dict[str, Any]:
    """Everything the SVG template draws: placed nodes with labels and links, edge paths, the legend."""
    by_id: dict[int, Task] = {node.pk: node for node in graph.nodes}
    layout = layout_dag([node.pk for node in graph.nodes], graph.edges)
    nodes = []
    for pk, placed in layout.nodes.items():
        task = by_id[pk]  # type: ignore[index]
        lines = label_lines(task.title)
        first_baseline = placed.y + (NODE_HEIGHT - 16 * (len(lines) + 1)) / 2 + 13
        nodes.append({
            "task": task,
            "x": placed.x, "y": placed.y, "width": placed.width, "height": placed.height,
            "lines": [{"text": text, "y": first_baseline + 16 * index} for index, text in enumerate(lines)],
            "status_y": first_baseline + 16 * len(lines),
            "text_x": placed.x + 12,
            "url": reverse("task-detail", kwargs={"org_slug": org_slug, "pk": task.pk}),
        })
    edges = [
        {"source": by_id[e.source], "target": by_id[e.target], "d": e.d}  # type: ignore[index]
        for e in layout.edges
    ]
    present = {node.status for node in graph.nodes}
    counts = {status: sum(1 for node in graph.nodes if node.status == status) for status in present}
    legend = [{"status": value, "label": label, "count": counts.get(value, 0)}
              for value, label in TaskStatus.choices]
    waits_for: dict[int, list[Task]] = {node.pk: [] for node in graph.nodes}
    for task_id, depends_on in graph.edges:
        waits_for[task_id].append(by_id[depends_on])
    return {
        "dag": {
            "nodes": nodes, "edges": edges, "width": layout.width, "height": layout.height,
            "layers": layout.layers, "legend": legend,
            "rows": [{"task": node, "waits_for": waits_for[node.pk]} for node in graph.nodes],
            "done": counts.get(TaskStatus.COMPLETED, 0), "total": len(graph.nodes),
        },
    }


@org_page(Scope.TASKS_READ)
@require_GET
def task_graph(request: HttpRequest, access: OrgAccess, pk: int) -> HttpResponse:
    """A parent task (a workflow run or a planned task) and its subtasks as a layered DAG."""
    parent = portal.task_with_people(organization=access.organization, pk=pk)
    if parent is None:
        raise Http404("No such task.")
    graph = portal.task_graph(parent=parent)
    run = WorkflowRun.objects.for_org(access.organization).select_related("template", "version").filter(
        task=parent
    ).first()
    context = {"parent": parent, "workflow_run": run, **dag_context(graph, org_slug=access.organization.slug)}
    return render_org(request, access, "automation/task_graph.html", context)


@org_page(Scope.WORKFLOWS_READ)
@require_GET
def workflow_runs(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    runs = portal.workflow_runs(organization=access.organization)
    return render_org(request, access, "automation/workflow_runs.html", {"runs": runs})
