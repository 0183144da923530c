"""Identity resolution on the synthetic ecosystem, scored against its known people.

Every id in the id graph is mapped back to its raw truth id (client keys through the staged events,
pseudonyms through the project key) and the clusters are scored by pairwise precision and recall.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import duckdb
import networkx as nx
import pytest

from spillover.synth.scoring import pair_count, person_of_each_id
from tests.conftest import DEMO_SIZE, TEST_KEY

CUSTOMERS = DEMO_SIZE["customers"]


@pytest.fixture(scope="module")
def resolved(demo_warehouse):
    directory = demo_warehouse["directory"]
    con = duckdb.connect(demo_warehouse["database"], read_only=True)
    id_graph = con.sql("select id_type, id_value, customer_key from int_identity__id_graph").fetchall()
    candidates = con.sql(
        "select id_type_a, id_a, id_type_b, id_b from int_identity__edges "
        "union all select id_type_a, id_a, id_type_b, id_b from int_identity__refused_edges"
    ).fetchall()
    clients = dict(con.sql("select distinct client_key, user_pseudo_id from stg_ga4__events where client_key is not null").fetchall())
    refused = con.sql("select reason, count(*) from int_identity__refused_edges group by 1").fetchall()
    con.close()
    return {
        "id_graph": id_graph,
        "candidates": candidates,
        "person_of": person_of_each_id(directory / "data" / "truth", clients, TEST_KEY),
        "refused": dict(refused),
    }


def _score(resolved) -> dict[str, float]:
    person_of = resolved["person_of"]
    ids = [(t, v, key) for t, v, key in resolved["id_graph"] if (t, v) in person_of]
    by_cluster = Counter(key for _, _, key in ids)
    by_person = Counter(person_of[(t, v)] for t, v, _ in ids)
    by_both = Counter((key, person_of[(t, v)]) for t, v, key in ids)
    # What any exact-match resolver could reach: components of every candidate edge, guards off.
    candidate_graph = nx.Graph()
    candidate_graph.add_nodes_from((t, v) for t, v, _ in ids)
    candidate_graph.add_edges_from(((ta, a), (tb, b)) for ta, a, tb, b in resolved["candidates"])
    component_of = {node: i for i, part in enumerate(nx.connected_components(candidate_graph)) for node in part}
    reachable = Counter((component_of[(t, v)], person_of[(t, v)]) for t, v, _ in ids)
    people_split = defaultdict(set)
    for (component, person) in reachable:
        people_split[person].add(component)
    return {
        "ids_scored": len(ids),
        "ids_unmapped": len(resolved["id_graph"]) - len(ids),
        "precision": pair_count(by_both) / pair_count(by_cluster),
        "recall": pair_count(by_both) / pair_count(by_person),
        "recall_of_linked": pair_count(by_both) / pair_count(reachable),
        "people": len(by_person),
        "people_without_link": sum(1 for parts in people_split.values() if len(parts) > 1),
        "people_registered_twice": sum(1 for n in Counter(person_of[(t, v)] for t, v, _ in ids if t == "member_id").values() if n > 1),
    }


def test_every_identifier_in_the_graph_maps_to_a_synthetic_person(resolved):
    score = _score(resolved)
    assert score["ids_unmapped"] == 0
    assert score["ids_scored"] > CUSTOMERS


def test_clusters_are_precise_and_recall_every_linked_person(resolved):
    score = _score(resolved)
    print(score, resolved["refused"])
    assert score["precision"] >= 0.995
    assert score["recall_of_linked"] >= 0.97
    # Never-logged-in browsers and twice-registered people cap what exact links can reach.
    assert score["recall"] < score["recall_of_linked"]
