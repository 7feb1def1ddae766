"""A layered left-to-right layout of a DAG, drawn as SVG by the workflow page (no JavaScript).

Layers by longest path from the sources (a node sits one layer right of its
furthest dependency); an edge spanning several layers passes through virtual
points, one per layer it crosses, so it runs between nodes rather than through
them; within a layer, nodes are ordered by barycenter sweeps (down and up,
keeping the order with the fewest crossings). Pure functions: ids in, geometry out.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

NODE_WIDTH = 210
NODE_HEIGHT = 64
VIRTUAL_HEIGHT = 18
LAYER_GAP = 70
ROW_GAP = 22
MARGIN = 16
SWEEPS = 6
LABEL_CHARS = 27
LABEL_LINES = 2

Key = Hashable


@dataclass
class PlacedNode:
    key: Key
    layer: int
    x: float
    y: float
    width: float = NODE_WIDTH
    height: float = NODE_HEIGHT

    @property
    def center_y(self) -> float:
        return self.y + self.height / 2


@dataclass
class PlacedEdge:
    source: Key  # the dependency (drawn on the left)
    target: Key  # the task waiting for it
    d: str  # SVG path data, ending at the target's left edge


@dataclass
class Layout:
    nodes: dict[Key, PlacedNode] = field(default_factory=dict)
    edges: list[PlacedEdge] = field(default_factory=list)
    width: float = 0
    height: float = 0
    layers: int = 0
    crossings: int = 0


def longest_path_layers(keys: Sequence[Key], edges: Sequence[tuple[Key, Key]]) -> dict[Key, int]:
    """Layer of each node: 0 for a node without dependencies, else 1 + the largest layer among them.

    ``edges`` are ``(task, depends_on)`` pairs. Nodes on a cycle (which the
    engine refuses) are put after everything else rather than lost.
    """
    deps: dict[Key, list[Key]] = defaultdict(list)
    dependents: dict[Key, list[Key]] = defaultdict(list)
    known = set(keys)
    for task, depends_on in edges:
        if task in known and depends_on in known:
            deps[task].append(depends_on)
            dependents[depends_on].append(task)
    waiting = {key: len(deps[key]) for key in keys}
    ready = [key for key in keys if waiting[key] == 0]
    layer: dict[Key, int] = {}
    while ready:
        key = ready.pop(0)
        layer[key] = max((layer[d] + 1 for d in deps[key]), default=0)
        for nxt in dependents[key]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                ready.append(nxt)
    last = max(layer.values(), default=-1)
    for key in keys:
        if key not in layer:
            last += 1
            layer[key] = last
    return layer


@dataclass(frozen=True)
class _Virtual:
    """A bend point of a long edge in an intermediate layer."""

    source: Key
    target: Key
    layer: int


def _crossings(order: list[list[Key]], links: list[tuple[Key, Key]]) -> int:
    """Crossings between adjacent layers; ``links`` join a node to one in the next layer."""
    position = {key: index for row in order for index, key in enumerate(row)}
    layer_of = {key: depth for depth, row in enumerate(order) for key in row}
    by_layer: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for left, right in links:
        by_layer[layer_of[left]].append((position[left], position[right]))
    total = 0
    for pairs in by_layer.values():
        pairs.sort()
        for i, (a1, b1) in enumerate(pairs):
            for a2, b2 in pairs[i + 1:]:
                if a2 > a1 and b2 < b1:
                    total += 1
    return total


def _sweep(order: list[list[Key]], neighbours: dict[Key, list[Key]], layers: range) -> None:
    for depth in layers:
        row = order[depth]
        fixed = {key: index for index, key in enumerate(order[depth - 1 if layers.step > 0 else depth + 1])}
        current = {key: index for index, key in enumerate(row)}

        def barycenter(key: Key, fixed: dict[Key, int] = fixed, current: dict[Key, int] = current) -> float:
            near = [fixed[n] for n in neighbours[key] if n in fixed]
            return sum(near) / len(near) if near else float(current[key])

        row.sort(key=lambda key: (barycenter(key), current[key]))


def layout_dag(keys: Sequence[Key], edges: Sequence[tuple[Key, Key]]) -> Layout:
    """Place ``keys`` (in a stable order, e.g. by id) and route ``edges`` (``(task, depends_on)``)."""
    if not keys:
        return Layout(width=2 * MARGIN, height=2 * MARGIN)
    layer = longest_path_layers(keys, edges)
    known = set(keys)
    real_edges = [(depends_on, task) for task, depends_on in edges if task in known and depends_on in known]
    depth = max(layer.values()) + 1
    order: list[list[Key]] = [[] for _ in range(depth)]
    for key in keys:
        order[layer[key]].append(key)
    # Split long edges into chains through virtual points; links join adjacent layers only.
    links: list[tuple[Key, Key]] = []
    chains: dict[tuple[Key, Key], list[Key]] = {}
    for source, target in real_edges:
        chain: list[Key] = [source]
        for middle in range(layer[source] + 1, layer[target]):
            virtual = _Virtual(source=source, target=target, layer=middle)
            order[middle].append(virtual)
            chain.append(virtual)
        chain.append(target)
        chains[(source, target)] = chain
        links.extend(pairwise(chain))
    left_of: dict[Key, list[Key]] = defaultdict(list)
    right_of: dict[Key, list[Key]] = defaultdict(list)
    for left, right in links:
        right_of[left].append(right)
        left_of[right].append(left)
    best = [list(row) for row in order]
    best_crossings = _crossings(best, links)
    for _ in range(SWEEPS):
        if best_crossings == 0:
            break
        _sweep(order, left_of, range(1, depth))
        _sweep(order, right_of, range(depth - 2, -1, -1))
        found = _crossings(order, links)
        if found < best_crossings:
            best, best_crossings = [list(row) for row in order], found
    order = best

    def height_of(key: Key) -> float:
        return VIRTUAL_HEIGHT if isinstance(key, _Virtual) else NODE_HEIGHT

    column_heights = [sum(height_of(k) for k in row) + ROW_GAP * (len(row) - 1) for row in order]
    tallest = max(column_heights)
    placed: dict[Key, PlacedNode] = {}
    for column, row in enumerate(order):
        y = MARGIN + (tallest - column_heights[column]) / 2
        x = MARGIN + column * (NODE_WIDTH + LAYER_GAP)
        for key in row:
            placed[key] = PlacedNode(key=key, layer=column, x=x, y=y, height=height_of(key))
            y += height_of(key) + ROW_GAP
    result = Layout(
        nodes={key: node for key, node in placed.items() if not isinstance(key, _Virtual)},
        width=2 * MARGIN + depth * NODE_WIDTH + (depth - 1) * LAYER_GAP,
        height=2 * MARGIN + tallest,
        layers=depth,
        crossings=best_crossings,
    )
    for (source, target), chain in chains.items():
        result.edges.append(PlacedEdge(source=source, target=target, d=_path([placed[k] for k in chain])))
    return result


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _path(chain: list[PlacedNode]) -> str:
    """A smooth left-to-right path: out of the first node's right edge, across virtual points, into the last."""
    start = chain[0]
    x, y = start.x + start.width, start.center_y
    parts = [f"M{_fmt(x)},{_fmt(y)}"]
    for index, node in enumerate(chain[1:], start=1):
        is_last = index == len(chain) - 1
        tx, ty = node.x, node.center_y
        bend = (tx - x) / 2
        parts.append(f"C{_fmt(x + bend)},{_fmt(y)} {_fmt(tx - bend)},{_fmt(ty)} {_fmt(tx)},{_fmt(ty)}")
        x, y = tx, ty
        if not is_last:  # straight through the virtual point's column
            x = node.x + node.width
            parts.append(f"L{_fmt(x)},{_fmt(y)}")
    return " ".join(parts)


def label_lines(text: str, *, width: int = LABEL_CHARS, lines: int = LABEL_LINES) -> list[str]:
    """``text`` wrapped to at most ``lines`` lines of ``width`` characters, the last ending in … if cut."""
    wrapped = textwrap.wrap(" ".join(text.split()), width=width, break_long_words=True) or [""]
    if len(wrapped) <= lines:
        return wrapped
    kept = wrapped[:lines]
    kept[-1] = kept[-1][: width - 1].rstrip() + "…"
    return kept
