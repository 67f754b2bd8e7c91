"""A lineage graph laid out in columns for drawing as SVG on the server: datasets → runs → logged models → versions →
aliases and stages. Pure Python: the web layer reads the rows and hands over nodes and edges; this places them.

Columns hold one kind each, left to right in COLUMNS order; empty columns take no room. Within a column nodes keep
the order they were added; each column is centred on the tallest. Edges are cubic curves from the right edge of one
node to the left edge of the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("dataset", "run", "logged_model", "version", "alias", "stage")
# Aliases and stages share the last column: both are what a version holds, and lines never cross a column to reach
# either.
COLUMN_OF = {
    "dataset": "dataset",
    "run": "run",
    "logged_model": "logged_model",
    "version": "version",
    "alias": "holds",
    "stage": "holds",
}
COLUMNS = ("dataset", "run", "logged_model", "version", "holds")
COLUMN_TITLES = {
    "dataset": "Datasets",
    "run": "Runs",
    "logged_model": "Logged models",
    "version": "Versions",
    "holds": "Aliases and stages",
}
KIND_TITLES = {
    "dataset": "Datasets",
    "run": "Runs",
    "logged_model": "Logged models",
    "version": "Versions",
    "alias": "Aliases",
    "stage": "Stages",
}
NODE_WIDTH = 184
NODE_HEIGHT = 46
COLUMN_GAP = 64
ROW_GAP = 14
MARGIN = 12
HEADER = 28  # room for the column titles
LABEL_CHARS = 24
SUBLABEL_CHARS = 30


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Node:
    id: str
    kind: str
    label: str
    sublabel: str = ""
    url: str = ""
    focus: bool = False  # the object the page is about
    x: int = 0
    y: int = 0

    @property
    def short_label(self) -> str:
        return _cut(self.label, LABEL_CHARS)

    @property
    def short_sublabel(self) -> str:
        return _cut(self.sublabel, SUBLABEL_CHARS)

    @property
    def width(self) -> int:
        return NODE_WIDTH

    @property
    def height(self) -> int:
        return NODE_HEIGHT

    @property
    def text_x(self) -> int:
        return self.x + 10

    @property
    def label_y(self) -> int:
        return self.y + 19

    @property
    def sublabel_y(self) -> int:
        return self.y + 36


@dataclass
class Edge:
    source: Node
    target: Node

    @property
    def path(self) -> str:
        x1, y1 = self.source.x + NODE_WIDTH, self.source.y + NODE_HEIGHT // 2
        x2, y2 = self.target.x, self.target.y + NODE_HEIGHT // 2
        bend = (x2 - x1) // 2
        return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)  # kind: how many were not drawn (limits)
    width: int = 0
    height: int = 0
    columns: list[tuple[str, int]] = field(default_factory=list)  # (title, x) of each drawn column

    def add(self, node: Node) -> Node:
        """Add `node` unless one with its id is there already; return the one in the graph."""
        if node.kind not in COLUMN_OF:
            raise ValueError(f"Unknown node kind {node.kind!r}")
        return self.nodes.setdefault(node.id, node)

    def link(self, source_id: str, target_id: str) -> None:
        source, target = self.nodes.get(source_id), self.nodes.get(target_id)
        if source is None or target is None or source is target:
            return
        if any(e.source is source and e.target is target for e in self.edges):
            return
        self.edges.append(Edge(source, target))

    def of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == kind]

    def in_column(self, column: str) -> list[Node]:
        return [n for n in self.nodes.values() if COLUMN_OF[n.kind] == column]

    def _ordered_columns(self) -> list[tuple[str, list[Node]]]:
        """The non-empty columns, each after the first ordered by where its nodes' sources sit (the mean of their
        rows), which keeps lines from crossing; a focused node leads its column, sources-less ones go last."""
        parents: dict[str, list[Node]] = {}
        for edge in self.edges:
            parents.setdefault(edge.target.id, []).append(edge.source)
        columns, row_of = [], {}
        for column in COLUMNS:
            nodes = self.in_column(column)
            if not nodes:
                continue
            if columns:

                def rank(item: tuple[int, Node]) -> tuple:
                    index, node = item
                    rows = [row_of[p.id] for p in parents.get(node.id, []) if p.id in row_of]
                    return (not node.focus, sum(rows) / len(rows) if rows else float("inf"), index)

                nodes = [node for _, node in sorted(enumerate(nodes), key=rank)]
            row_of.update((node.id, row) for row, node in enumerate(nodes))
            columns.append((column, nodes))
        return columns

    def layout(self) -> Graph:
        """Place every node and size the drawing; returns self."""
        drawn = self._ordered_columns()
        tallest = max((len(nodes) for _, nodes in drawn), default=0)
        full = tallest * NODE_HEIGHT + max(tallest - 1, 0) * ROW_GAP
        self.columns = []
        for index, (kind, nodes) in enumerate(drawn):
            x = MARGIN + index * (NODE_WIDTH + COLUMN_GAP)
            own = len(nodes) * NODE_HEIGHT + (len(nodes) - 1) * ROW_GAP
            top = MARGIN + HEADER + (full - own) // 2
            for row, node in enumerate(nodes):
                node.x, node.y = x, top + row * (NODE_HEIGHT + ROW_GAP)
            self.columns.append((COLUMN_TITLES[kind], x))
        self.width = 2 * MARGIN + len(drawn) * NODE_WIDTH + max(len(drawn) - 1, 0) * COLUMN_GAP
        self.height = 2 * MARGIN + HEADER + full
        return self

    def outline(self) -> list[tuple[str, list[tuple[Node, list[Node]]]]]:
        """The text alternative: every drawn column's title and its nodes, each with the nodes it leads to."""
        targets: dict[str, list[Node]] = {}
        for edge in self.edges:
            targets.setdefault(edge.source.id, []).append(edge.target)
        return [
            (KIND_TITLES[kind], [(n, targets.get(n.id, [])) for n in self.of_kind(kind)])
            for kind in KINDS
            if self.of_kind(kind)
        ]
