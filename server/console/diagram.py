"""A workflow definition drawn as a diagram: trigger → blocks → end, branches labelled.

Blocks are placed in layers by their distance from the start (breadth first), side by side
within a layer; an edge back to an earlier layer (a loop through a timer) is drawn as a curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 190, 54, 40, 46, 20
START, END = "__start__", "__end__"


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    title: str
    detail: str
    kind: str
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Edge:
    path: str
    label: str
    label_x: float
    label_y: float
    back: bool


@dataclass(frozen=True, slots=True)
class Diagram:
    nodes: list[Node]
    edges: list[Edge]
    width: float
    height: float
    box_w: int = BOX_W
    box_h: int = BOX_H


def _detail(block: dict[str, Any]) -> str:
    kind = block.get("type", "")
    if kind == "timer":
        until = block.get("until")
        return f"wait {block.get('duration')}" if block.get("duration") else f"until {until}"
    if kind in ("email", "transactional_email"):
        return f"message {block.get('templateId')} to {block.get('to') or '${email}'}"
    if kind == "webhook":
        return str(block.get("url", ""))[:30]
    if kind == "launch_event":
        return f"event {block.get('eventTypeKey')}"
    if kind == "condition":
        return f"{len(block.get('conditions') or [])} condition(s)"
    return ""


def exits(block: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, target) of each way out of a block; an empty target ends the run."""
    kind = block.get("type")
    if kind == "end":
        return []
    if kind == "condition":
        return [("yes", str(block.get("onTrue") or "")), ("no", str(block.get("onFalse") or ""))]
    if kind == "split":
        return [(f"{b.get('percent')}%", str(b.get("next") or ""))
                for b in block.get("branches") or [] if isinstance(b, dict)]
    return [("", str(block.get("next") or ""))]


def layout(doc: dict[str, Any]) -> Diagram:
    blocks = {str(b.get("id")): b for b in doc.get("blocks") or [] if isinstance(b, dict)}
    trigger = (doc.get("trigger") or {}).get("eventTypeKey", "?")
    graph: dict[str, list[tuple[str, str]]] = {START: [("", str(doc.get("start") or ""))]}
    for bid, block in blocks.items():
        graph[bid] = [(label, t if t in blocks else END) for label, t in exits(block)]
        if block.get("type") == "end" or not graph[bid]:
            graph[bid] = [("", END)]
    layer: dict[str, int] = {START: 0}
    queue = [START]
    while queue:
        current = queue.pop(0)
        for _label, target in graph.get(current, []):
            if target not in layer and target != END:
                layer[target] = layer[current] + 1
                queue.append(target)
    for bid in blocks:  # unreachable blocks still show, below the rest
        layer.setdefault(bid, max(layer.values()) + 1)
    layer[END] = max(layer.values()) + 1
    rows: dict[int, list[str]] = {}
    for nid, n in sorted(layer.items(), key=lambda kv: kv[1]):
        rows.setdefault(n, []).append(nid)
    widest = max(len(r) for r in rows.values())
    width = MARGIN * 2 + widest * BOX_W + (widest - 1) * GAP_X + 60
    pos: dict[str, tuple[float, float]] = {}
    for n, ids in rows.items():
        row_w = len(ids) * BOX_W + (len(ids) - 1) * GAP_X
        left = (width - 60 - row_w) / 2
        for i, nid in enumerate(ids):
            pos[nid] = (left + i * (BOX_W + GAP_X), MARGIN + n * (BOX_H + GAP_Y))
    nodes = [Node(START, "Trigger", f"event {trigger}", "start", *pos[START])]
    for bid, block in blocks.items():
        nodes.append(Node(bid, f"{bid} · {block.get('type')}", _detail(block),
                          str(block.get("type")), *pos[bid]))
    nodes.append(Node(END, "End", "the run completes", "end", *pos[END]))
    edges = [_edge(pos[src], pos[dst], label) for src, outs in graph.items()
             for label, dst in outs if src in pos and dst in pos]
    height = MARGIN * 2 + (layer[END] + 1) * BOX_H + layer[END] * GAP_Y
    return Diagram(nodes=nodes, edges=edges, width=width, height=height)


def _edge(src: tuple[float, float], dst: tuple[float, float], label: str) -> Edge:
    sx, sy = src[0] + BOX_W / 2, src[1] + BOX_H
    if dst[1] > src[1]:
        dx, dy = dst[0] + BOX_W / 2, dst[1]
        mid = (sy + dy) / 2
        path = f"M{sx:.0f},{sy:.0f} C{sx:.0f},{mid:.0f} {dx:.0f},{mid:.0f} {dx:.0f},{dy - 2:.0f}"
        return Edge(path, label, (sx + dx) / 2 + 6, mid - 4, back=False)
    # Back to an earlier block: round the right side.
    rx = max(src[0], dst[0]) + BOX_W + 30
    ty = dst[1] + BOX_H / 2
    path = (f"M{src[0] + BOX_W:.0f},{src[1] + BOX_H / 2:.0f} C{rx:.0f},{src[1] + BOX_H / 2:.0f} "
            f"{rx:.0f},{ty:.0f} {dst[0] + BOX_W + 2:.0f},{ty:.0f}")
    return Edge(path, label, rx - 4, (src[1] + ty) / 2 + BOX_H / 2, back=True)
