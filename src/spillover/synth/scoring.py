"""Scores spillover's output against the synthetic ecosystem's truth (``truth/``).

Used by the demo's summary and by tests: identity clusters are mapped back to the synthetic people
through the same derivations the pipeline uses (client keys via the staged events, pseudonyms via the
project key) and scored by pairwise precision and recall.
"""

from __future__ import annotations

import csv
from collections import Counter
from math import comb
from pathlib import Path
from typing import TYPE_CHECKING

from spillover.privacy.pseudonymise import pseudonymise_email, pseudonymise_phone

if TYPE_CHECKING:
    from ibis.backends import BaseBackend


def person_of_each_id(truth_dir: Path, clients: dict[str, str], key: bytes) -> dict[tuple[str, str], str]:
    """(id_type, id_value) as the id graph names it → the truth's person_id.

    ``clients`` maps each staged ``client_key`` to its ``user_pseudo_id``.
    """
    raw: dict[tuple[str, str], str] = {}
    with open(Path(truth_dir) / "identity.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            raw[(row["id_type"], row["id_value"])] = row["person_id"]
    person_of: dict[tuple[str, str], str] = {}
    for (id_type, value), person in raw.items():
        if id_type in ("member_id", "user_id"):
            person_of[("member_id", value)] = person
        elif id_type in ("email", "phone"):
            pseudonymise = pseudonymise_email if id_type == "email" else pseudonymise_phone
            pid = pseudonymise(value, key).pid
            if pid:
                person_of[(f"{id_type}_pid", pid)] = person
    for client_key, pseudo_id in clients.items():
        if ("user_pseudo_id", pseudo_id) in raw:
            person_of[("client_key", client_key)] = raw[("user_pseudo_id", pseudo_id)]
    return person_of


def pair_count(groups: Counter) -> int:
    """Number of unordered pairs within each group, summed."""
    return sum(comb(n, 2) for n in groups.values())


def identity_scores(con: BaseBackend, truth_dir: Path, key: bytes) -> dict[str, float | int]:
    """Pairwise precision and recall of ``int_identity__id_graph`` against the synthetic people."""
    events = con.table("stg_ga4__events")
    clients = (
        events.filter(events.client_key.notnull())
        .select("client_key", "user_pseudo_id")
        .distinct()
        .to_pandas()
    )
    person_of = person_of_each_id(truth_dir, dict(zip(clients.client_key, clients.user_pseudo_id)), key)
    graph = con.table("int_identity__id_graph").to_pandas()
    ids = [
        (person_of[(t, v)], k)
        for t, v, k in zip(graph.id_type, graph.id_value, graph.customer_key)
        if (t, v) in person_of
    ]
    by_cluster = Counter(k for _, k in ids)
    by_person = Counter(p for p, _ in ids)
    by_both = Counter(ids)
    return {
        "customers": int(graph.customer_key.nunique()),
        "people": len(by_person),
        "ids_scored": len(ids),
        "ids_unmapped": len(graph) - len(ids),
        "precision": pair_count(by_both) / max(pair_count(by_cluster), 1),
        "recall": pair_count(by_both) / max(pair_count(by_person), 1),
    }
