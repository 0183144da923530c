"""Identity resolution on the synthetic ecosystem, scored against its known people.

Every id in the id graph is mapped back to its raw truth id (client keys through the staged events,
pseudonyms through the project key) and the clusters are scored by pairwise precision and recall.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from math import comb

import duckdb
import networkx as nx
import pytest

from spillover.config import load_config
from spillover.demo import run_demo
from spillover.engine import connect
from spillover.identity.graph import build_identity
from spillover.privacy.pseudonymise import pseudonymise_email, pseudonymise_phone
from tests.conftest import TEST_KEY

CUSTOMERS, DAYS, SEED = 500, 60, 11


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    directory = tmp_path_factory.mktemp("identity_demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPILLOVER_KEY", TEST_KEY.decode())
        summary = run_demo(directory, customers=CUSTOMERS, days=DAYS, seed=SEED)
        # Built here too, so the test holds whether or not the pipeline has registered the stage yet.
        warehouse = connect(summary["db"])
        build_identity(warehouse, load_config(directory))
        warehouse.disconnect()
    con = duckdb.connect(summary["db"].removeprefix("duckdb:///"), read_only=True)
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
        "person_of": _person_of_each_id(directory / "data" / "truth" / "identity.csv", clients),
        "refused": dict(refused),
    }


def _person_of_each_id(truth_file, clients: dict[str, str]) -> dict[tuple[str, str], str]:
    """(id_type, id_value) as the id graph names it -> the truth's person_id."""
    raw: dict[tuple[str, str], str] = {}
    with open(truth_file, newline="") as handle:
        for row in csv.DictReader(handle):
            raw[(row["id_type"], row["id_value"])] = row["person_id"]
    person_of: dict[tuple[str, str], str] = {}
    for (id_type, value), person in raw.items():
        if id_type in ("member_id", "user_id"):
            person_of[("member_id", value)] = person
        elif id_type == "email":
            pid = pseudonymise_email(value, TEST_KEY).pid
            if pid:
                person_of[("email_pid", pid)] = person
        elif id_type == "phone":
            pid = pseudonymise_phone(value, TEST_KEY).pid
            if pid:
                person_of[("phone_pid", pid)] = person
    for client_key, pseudo_id in clients.items():
        if ("user_pseudo_id", pseudo_id) in raw:
            person_of[("client_key", client_key)] = raw[("user_pseudo_id", pseudo_id)]
    return person_of


def _pairs(groups: Counter) -> int:
    return sum(comb(n, 2) for n in groups.values())


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
        "precision": _pairs(by_both) / _pairs(by_cluster),
        "recall": _pairs(by_both) / _pairs(by_person),
        "recall_of_linked": _pairs(by_both) / _pairs(reachable),
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
