"""The workflow graph: a layered layout computed in Python and drawn as SVG on the server."""

from __future__ import annotations

import re

import pytest

from automation.services.tasks import dependency_add, task_cancel, task_complete, task_start
from automation.views.dag_layout import label_lines, layout_dag, longest_path_layers
from tests.portal.factories import make_task, make_workflow


def test_layers_follow_the_longest_path():
    """A node sits one layer right of its furthest dependency (a diamond with a shortcut edge)."""
    edges = [("b", "a"), ("c", "a"), ("d", "b"), ("d", "c"), ("e", "d"), ("e", "a")]
    assert longest_path_layers(["a", "b", "c", "d", "e"], edges) == {"a": 0, "b": 1, "c": 1, "d": 2, "e": 3}


def test_a_long_edge_bends_through_the_layers_it_crosses():
    """An edge spanning three layers runs straight through two virtual points instead of across nodes."""
    layout = layout_dag(["a", "b", "c", "d"], [("b", "a"), ("c", "b"), ("d", "c"), ("d", "a")])
    shortcut = next(edge for edge in layout.edges if (edge.source, edge.target) == ("a", "d"))
    assert shortcut.d.count("L") == 2
    assert shortcut.d.count("C") == 3
    assert layout.layers == 4
    start = shortcut.d.split()[0]
    node_a, node_d = layout.nodes["a"], layout.nodes["d"]
    assert start == f"M{node_a.x + node_a.width:g},{node_a.center_y:g}"
    assert shortcut.d.endswith(f"{node_d.x:g},{node_d.center_y:g}")


def test_ordering_removes_avoidable_crossings():
    """Barycenter sweeps untangle two chains given in a crossing order."""
    keys = ["a1", "a2", "b1", "b2"]  # a1 -> b2 and a2 -> b1 cross in input order
    layout = layout_dag(keys, [("b2", "a1"), ("b1", "a2")])
    assert layout.crossings == 0
    assert (layout.nodes["a1"].y < layout.nodes["a2"].y) == (layout.nodes["b2"].y < layout.nodes["b1"].y)


def test_nodes_never_overlap_and_a_cycle_loses_no_node():
    """Every node gets its own box; nodes on a (refused) cycle are still placed."""
    layout = layout_dag([1, 2, 3, 4], [(2, 1), (3, 1), (4, 3), (3, 4)])
    boxes = sorted((n.x, n.y) for n in layout.nodes.values())
    assert len(set(boxes)) == 4
    for node in layout.nodes.values():
        assert node.x + node.width <= layout.width
        assert node.y + node.height <= layout.height


def test_labels_wrap_to_two_lines_with_an_ellipsis():
    """Long titles are cut to two lines ending in an ellipsis."""
    lines = label_lines("Prepare Maria Lopez's first day with her manager and the whole QA team")
    assert len(lines) == 2
    assert lines[-1].endswith("…")
    assert label_lines("Short") == ["Short"]


@pytest.mark.django_db
def test_the_graph_page_draws_one_node_per_subtask_and_one_arrow_per_dependency(tenant_a, page_for):
    """The SVG holds a node per subtask with its status class, a path per dependency, a legend and a table."""
    org = tenant_a.organization
    flow = make_workflow(org, {"accounts": [], "equipment": [], "welcome": ["accounts"], "buddy": [],
                               "first_day": ["accounts", "equipment", "buddy"], "review": ["first_day"]})
    outside = make_task(org, title="Unrelated")
    dependency_add(task=flow["review"], depends_on=outside, actor=None)  # not a subtask: not drawn
    task_start(task=flow["accounts"], actor=tenant_a.owner)
    task_complete(task=flow["accounts"], actor=tenant_a.owner)
    task_start(task=flow["equipment"], actor=tenant_a.owner)
    task_cancel(task=flow["buddy"], actor=tenant_a.owner, reason="not needed")  # what waits on it is skipped
    html = page_for(tenant_a.viewer).get(f"/orgs/{tenant_a.slug}/tasks/{flow['parent'].pk}/graph/").content.decode()
    svg = html[html.index("<svg"):html.index("</svg>")]
    nodes = {int(pk): status
             for status, pk in re.findall(r'<g class="dag-node status-([a-z_]+)" data-task="(\d+)"', svg)}
    keys = ("accounts", "equipment", "welcome", "buddy", "first_day", "review")
    assert set(nodes) == {flow[key].pk for key in keys}
    assert nodes[flow["accounts"].pk] == "completed"
    assert nodes[flow["equipment"].pk] == "in_progress"
    assert nodes[flow["buddy"].pk] == "cancelled"
    assert nodes[flow["first_day"].pk] == nodes[flow["review"].pk] == "skipped"
    assert nodes[flow["welcome"].pk] == "pending"
    edges = re.findall(r'<path class="dag-edge from-([a-z_]+)" data-from="(\d+)" data-to="(\d+)" d="M', svg)
    pairs = {(int(source), int(target)) for _, source, target in edges}
    assert len(edges) == 5
    assert pairs == {
        (flow["accounts"].pk, flow["welcome"].pk), (flow["accounts"].pk, flow["first_day"].pk),
        (flow["equipment"].pk, flow["first_day"].pk), (flow["buddy"].pk, flow["first_day"].pk),
        (flow["first_day"].pk, flow["review"].pk),
    }
    assert ("completed", str(flow["accounts"].pk), str(flow["welcome"].pk)) in edges
    assert 'marker-end="url(#dag-arrow)"' in svg
    assert 'role="img" aria-labelledby="dag-title dag-desc"' in svg
    assert "6 steps in 3 columns, 1 completed" in svg
    assert f'href="/orgs/{tenant_a.slug}/tasks/{flow["review"].pk}/"' in svg
    assert "Unrelated" not in svg
    legend = html[html.index('class="dag-legend"'):]
    assert 'status-completed" aria-hidden="true"></span>Completed <span class="muted">(1)' in legend
    assert html.count("<tr>") == 1 + 6  # header and one row per step in the table


@pytest.mark.django_db
def test_a_task_without_subtasks_says_so(tenant_a, page_for):
    """The graph of a task without subtasks draws nothing and says so."""
    task = make_task(tenant_a.organization, title="Alone")
    html = page_for(tenant_a.member).get(f"/orgs/{tenant_a.slug}/tasks/{task.pk}/graph/").content.decode()
    assert "<svg" not in html
    assert "This task has no subtasks." in html


@pytest.mark.django_db
def test_a_started_workflow_is_listed_and_drawn(tenants, page_for):
    """A workflow started through its service appears in the runs list and its steps are drawn; not for others."""
    from automation.services.workflows import workflow_create, workflow_start

    a, b = tenants
    template = workflow_create(organization=a.organization, actor=a.owner, name="Weekly report", definition={
        "steps": [{"key": "collect", "title": "Collect figures", "execution_type": "manual"},
                  {"key": "write", "title": "Write the report", "execution_type": "manual", "depends_on": ["collect"]},
                  {"key": "send", "title": "Send it", "execution_type": "manual", "depends_on": ["write"]}]})
    started = workflow_start(template=template, actor=a.owner)
    parent = started.run.task
    client = page_for(a.viewer)
    listing = client.get(f"/orgs/{a.slug}/workflow-runs/").content.decode()
    assert "Weekly report" in listing
    assert f'href="/orgs/{a.slug}/tasks/{parent.pk}/graph/"' in listing
    graph = client.get(f"/orgs/{a.slug}/tasks/{parent.pk}/graph/").content.decode()
    assert graph.count('<g class="dag-node status-') == 3
    assert graph.count('<path class="dag-edge') == 2
    assert "Run of the workflow “Weekly report”, version 1" in graph
    other = page_for(b.owner)
    assert other.get(f"/orgs/{a.slug}/workflow-runs/").status_code == 404
    assert other.get(f"/orgs/{b.slug}/tasks/{parent.pk}/graph/").status_code == 404
    assert "Weekly report" not in other.get(f"/orgs/{b.slug}/workflow-runs/").content.decode()
