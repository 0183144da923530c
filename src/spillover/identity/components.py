"""Connected components of an identity graph, computed in the engine.

Min-label propagation with pointer jumping, as Ibis expressions, so it runs unchanged on DuckDB and
Spark: every node starts with its own label; each round takes the smallest label among a node and
its neighbours, then jumps each label to its own label's label (which halves the remaining distance
on long chains). It stops when no label changes, or fails loudly at the iteration cap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from spillover.engine import drop_table, temp_name
from spillover.errors import SpilloverStageError

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

DEFAULT_MAX_ITERATIONS = 50


def connected_components(
    con: BaseBackend,
    edges: ibis.Table,
    *,
    source: str = "node_a",
    target: str = "node_b",
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> tuple[ibis.Table, int]:
    """Label every node of ``edges`` with the smallest node of its component.

    ``edges`` has two columns of the same type naming the endpoints (self-loops are fine: they make
    isolated nodes). Returns a materialised table ``(node, component)`` and the number of rounds
    used. The caller owns the returned table (drop it with ``engine.drop_table`` when done).
    """
    pairs = edges.select(a=edges[source], b=edges[target]).filter(
        lambda t: t.a.notnull() & t.b.notnull()
    )
    # Both directions, so a node sees all of its neighbours in one join.
    undirected = pairs.union(pairs.select(a=pairs.b, b=pairs.a), distinct=True)
    edge_name = temp_name("cc_edges")
    con.create_table(edge_name, undirected)
    graph = con.table(edge_name)

    nodes = graph.select(node=graph.a).distinct()
    labels_name = temp_name("cc_labels")
    con.create_table(labels_name, nodes.mutate(component=nodes.node))
    try:
        for iteration in range(1, max_iterations + 1):
            labels = con.table(labels_name)
            # 1. smallest label among the node and its neighbours
            neighbour = graph.join(labels, graph.b == labels.node).select(
                node=graph.a, component=labels.component
            )
            candidates = labels.union(neighbour)
            smallest = candidates.group_by("node").aggregate(component=candidates.component.min())
            # 2. pointer jumping: take the label of the label
            hop = labels.view()
            jumped = smallest.left_join(hop, smallest.component == hop.node).select(
                node=smallest.node,
                component=ibis.least(smallest.component, hop.component.coalesce(smallest.component)),
            )
            next_name = temp_name("cc_labels")
            con.create_table(next_name, jumped)
            updated = con.table(next_name)
            changed = (
                updated.join(labels, "node")
                .filter(lambda t: t.component != t.component_right)
                .count()
                .execute()
            )
            drop_table(con, labels_name)
            labels_name = next_name
            if changed == 0:
                return con.table(labels_name), iteration
    except Exception:
        drop_table(con, labels_name)
        raise
    finally:
        drop_table(con, edge_name)
    drop_table(con, labels_name)
    raise SpilloverStageError(
        "identity",
        "connected components",
        f"labels still changing after {max_iterations} rounds; the graph may hold an unusually long "
        "chain of identifiers — raise identity.max_iterations or check the guards on shared ids",
    )
