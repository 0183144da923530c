"""Connected components of an identity graph, computed in the engine.

Hooking and contraction, as Ibis expressions, so it runs unchanged on DuckDB and Spark. Each round,
every node that has a smaller neighbour hooks onto the smallest one; pointer jumping flattens those
hooks so that each node points at its round's root; then every link is rewritten between roots and
the links inside one root vanish. A round leaves only the local minima as roots, so long chains and
big clusters shrink geometrically and finished components drop out of the work after a round or two.
It stops when no link is left, or fails loudly at the round cap. A node's component is the smallest
node it is connected to, found by following its hooks round by round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from spillover.engine import create_scratch_table, drop_table
from spillover.errors import SpilloverStageError

if TYPE_CHECKING:
    from collections.abc import Callable

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
    scratch: list[str] = []

    def keep(expr: ibis.Table, prefix: str) -> ibis.Table:
        table = create_scratch_table(con, expr, prefix)
        scratch.append(table.get_name())
        return table

    def release(table: ibis.Table) -> None:
        scratch.remove(table.get_name())
        drop_table(con, table.get_name())

    pairs = edges.select(a=edges[source], b=edges[target]).filter(lambda t: t.a.notnull() & t.b.notnull())
    by_number = not pairs.a.type().is_integer()
    try:
        if by_number:
            # Rounds join and group on the nodes again and again: numbers are cheaper to hash than
            # strings. In no order (ordering would cost a sort): names are restored at the end.
            nodes = pairs.select(node=pairs.a).union(pairs.select(node=pairs.b), distinct=True)
            numbered = keep(nodes.mutate(number=ibis.row_number()), "cc_nodes")
            at_a, at_b = numbered.view(), numbered.view()
            numbered_pairs = pairs.join(at_a, pairs.a == at_a.node).join(at_b, pairs.b == at_b.node)
            numbered_pairs = numbered_pairs.select(a=at_a.number, b=at_b.number)
        else:
            numbered_pairs = pairs.select(a=pairs.a.cast("int64"), b=pairs.b.cast("int64"))
        # Repeated links are harmless here; the first contraction drops them.
        links = keep(_oriented(numbered_pairs), "cc_links")
        hooks_by_round: list[ibis.Table] = []
        while _count(links) > 0:
            if len(hooks_by_round) == max_iterations:
                raise SpilloverStageError(
                    "identity",
                    "connected components",
                    f"labels still changing after {max_iterations} rounds; the graph may hold an unusually long "
                    "chain of identifiers — raise identity.max_iterations or check the guards on shared ids",
                )
            hooks = _flatten(keep(_hooks(links), "cc_hooks"), keep, release)
            hooks_by_round.append(hooks)
            contracted = keep(_contract(links, hooks), "cc_links")
            release(links)
            links = contracted
        resolved = _resolve(hooks_by_round, keep)
        if by_number:
            labels = _named(numbered, resolved)
        else:
            loops = numbered_pairs.filter(numbered_pairs.a == numbered_pairs.b).select(node=numbered_pairs.a)
            labels = _numbered_labels(resolved, loops if _count(loops) else None)
            labels = labels.select(node=labels.node.cast(pairs.a.type()), component=labels.component.cast(pairs.a.type()))
        return create_scratch_table(con, labels, "cc_labels"), len(hooks_by_round)
    finally:
        for name in scratch:
            drop_table(con, name)


def _oriented(pairs: ibis.Table) -> ibis.Table:
    """``pairs (a, b)`` as links ``(small, large)``, whichever way they were given; a node's links to
    itself dropped.

    A node only ever hooks onto a smaller neighbour, so one direction is all a round needs.
    """
    oriented = pairs.select(small=ibis.least(pairs.a, pairs.b), large=ibis.greatest(pairs.a, pairs.b))
    return oriented.filter(oriented.small != oriented.large)


def _numbered_labels(resolved: ibis.Table | None, loops: ibis.Table | None) -> ibis.Table:
    """``(node, component)`` for numbered nodes: a hooked node's component is its root; a root
    (never hooked) is its own; so is a node seen only in links to itself (``loops``)."""
    if resolved is None:
        return loops.select("node", component=loops.node).distinct()
    hooked = resolved.select("node", component=resolved.parent)
    roots = resolved.select(node=resolved.parent, component=resolved.parent).distinct()
    linked = hooked.union(roots, distinct=False)
    if loops is None:
        return linked
    alone = loops.distinct().anti_join(linked, "node")
    return linked.union(alone.select("node", component=alone.node), distinct=False)


def _named(numbered: ibis.Table, resolved: ibis.Table | None) -> ibis.Table:
    """``(node, component)`` for named nodes: the component is the smallest name with the same root."""
    if resolved is None:
        return numbered.select("node", component=numbered.node)
    joined = numbered.left_join(resolved, numbered.number == resolved.node)
    rooted = joined.select(node=numbered.node, root=resolved.parent.coalesce(numbered.number))
    names = rooted.group_by("root").aggregate(component=rooted.node.min())
    rooted = rooted.view()  # a relation of its own, not one more link of the join above
    return rooted.join(names, rooted.root == names.root).select(rooted.node, names.component)


def _count(table: ibis.Table) -> int:
    return int(table.count().to_pyarrow().as_py())


def _hooks(links: ibis.Table) -> ibis.Table:
    """``(node, parent)``: each node with a smaller neighbour, and its smallest neighbour."""
    return links.group_by(node=links.large).aggregate(parent=links.small.min())


def _flatten(
    hooks: ibis.Table, keep: Callable[[ibis.Table, str], ibis.Table], release: Callable[[ibis.Table], None]
) -> ibis.Table:
    """Pointer jumping: replace each parent by its parent's parent until every parent is a root.

    Parents are always smaller than their node, so the hooks form a forest and each jump halves the
    height of its trees: a chain of k hooks needs log2(k) jumps, and one more finds nothing to move.
    A node whose parent is a root is set aside after each jump, so later jumps move only the few
    nodes deep in their trees.
    """
    steps: list[ibis.Table] = []
    settled: list[ibis.Table] = []
    pending = current = hooks
    while True:
        up = current.view()
        jumped = pending.left_join(up, pending.parent == up.node).select(
            node=pending.node, parent=up.parent.coalesce(pending.parent), moved=up.node.notnull()
        )
        step = keep(jumped, "cc_hooks")
        steps.append(step)
        settled.append(step.filter(~step.moved).select("node", "parent"))
        if not step.moved.any().to_pyarrow().as_py():
            break
        pending = step.filter(step.moved).select("node", "parent")
        current = ibis.union(*settled, pending, distinct=False)
    flat = keep(ibis.union(*settled, distinct=False) if len(settled) > 1 else settled[0], "cc_hooks")
    for table in (hooks, *steps):
        release(table)
    return flat


def _contract(links: ibis.Table, hooks: ibis.Table) -> ibis.Table:
    """The links between this round's roots: each end replaced by its root, links within one root gone."""
    at_small, at_large = hooks.view(), hooks.view()
    moved = links.left_join(at_small, links.small == at_small.node).left_join(at_large, links.large == at_large.node)
    moved = moved.select(a=at_small.parent.coalesce(links.small), b=at_large.parent.coalesce(links.large))
    return _oriented(moved).distinct()


def _resolve(hooks_by_round: list[ibis.Table], keep: Callable[[ibis.Table, str], ibis.Table]) -> ibis.Table | None:
    """``(node, parent)`` for every node that ever hooked, ``parent`` being its final root.

    A round's parents are roots of that round, which may hook in a later round; so resolve from the
    last round back, each round's parents looked up among the later rounds' resolved nodes.
    """
    resolved: list[ibis.Table] = []
    for hooks in reversed(hooks_by_round):
        if resolved:
            later = ibis.union(*resolved, distinct=False)
            hooks = hooks.left_join(later, hooks.parent == later.node).select(
                node=hooks.node, parent=later.parent.coalesce(hooks.parent)
            )
            hooks = keep(hooks, "cc_roots")
        resolved.append(hooks)
    return ibis.union(*resolved, distinct=False) if resolved else None
