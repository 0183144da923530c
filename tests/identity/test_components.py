"""Connected components in the engine equal networkx's, whatever the edge order."""

from __future__ import annotations

import random

import networkx as nx
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spillover.engine import drop_table
from spillover.identity.components import connected_components

edge_lists = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=60)


def _components(con, edges: list[tuple]) -> set[frozenset]:
    table = con.create_table("edges", pa.table({"node_a": [a for a, _ in edges], "node_b": [b for _, b in edges]}), overwrite=True)
    labels, _ = connected_components(con, table)
    frame = labels.to_pandas()
    drop_table(con, labels.get_name())
    groups: dict = {}
    for node, component in zip(frame["node"], frame["component"]):
        groups.setdefault(component, set()).add(node)
    # Each component is named after its smallest node.
    assert all(min(group) == component for component, group in groups.items())
    return {frozenset(g) for g in groups.values()}


def _reference(edges: list[tuple[int, int]]) -> set[frozenset[int]]:
    graph = nx.Graph()
    graph.add_edges_from(edges)
    return {frozenset(c) for c in nx.connected_components(graph)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edges=edge_lists, order=st.randoms(use_true_random=False))
def test_components_match_networkx_in_any_edge_order(duck, edges, order):
    shuffled = list(edges)
    order.shuffle(shuffled)
    assert _components(duck, shuffled) == _reference(edges)


def _chain_in_random_order(length: int, seed: int) -> list[tuple[int, int]]:
    """A path through ``length`` nodes whose numbers are shuffled: the worst case for min-labels."""
    numbers = list(range(length))
    random.Random(seed).shuffle(numbers)
    return list(zip(numbers, numbers[1:]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edges=edge_lists)
def test_components_of_string_nodes_match_networkx(duck, edges):
    # Strings are numbered inside (in no particular order); names come back as the smallest node.
    named = [(f"member_id:{a}", f"email_pid:{b}") for a, b in edges]
    assert _components(duck, named) == _reference(named)


def test_a_chain_numbered_in_order_takes_one_round(duck):
    chain = [(i, i + 1) for i in range(200)]
    table = duck.create_table("edges", pa.table({"node_a": [a for a, _ in chain], "node_b": [b for _, b in chain]}))
    labels, rounds = connected_components(duck, table)
    assert set(labels.to_pandas()["component"]) == {0}
    assert rounds == 1  # every node hooks onto its predecessor; pointer jumping flattens the chain


def test_a_long_shuffled_chain_converges_in_log_rounds(duck):
    chain = _chain_in_random_order(2_000, seed=3)
    table = duck.create_table("edges", pa.table({"node_a": [a for a, _ in chain], "node_b": [b for _, b in chain]}))
    labels, rounds = connected_components(duck, table)
    frame = labels.to_pandas()
    assert len(frame) == 2_000
    assert set(frame["component"]) == {0}
    # Only local minima stay roots, at most half of a path's nodes: ceil(log2(2000)) = 11 rounds at most.
    assert 2 <= rounds <= 11


def test_iteration_cap_is_a_clear_error(duck):
    from spillover.errors import SpilloverStageError

    chain = _chain_in_random_order(100, seed=3)
    table = duck.create_table("edges", pa.table({"node_a": [a for a, _ in chain], "node_b": [b for _, b in chain]}))
    with pytest.raises(SpilloverStageError, match=r"labels still changing after 2 rounds"):
        connected_components(duck, table, max_iterations=2)
    assert not [n for n in duck.list_tables() if n.startswith("_spillover_")]


def test_components_on_every_engine(con):
    edges = [(1, 2), (2, 3), (10, 11), (20, 20), (3, 1)]
    assert _components(con, edges) == {frozenset({1, 2, 3}), frozenset({10, 11}), frozenset({20})}
