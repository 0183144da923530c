"""Scores spillover's output against the synthetic ecosystem's truth (``truth/``).

Used by the demo's summary and by tests: identity clusters are mapped back to the synthetic people
through the same derivations the pipeline uses (client keys via the staged events, pseudonyms via the
project key) and scored by pairwise precision and recall; gateway adoptions are matched with the true
adopters by person, device and local date; impact estimates are compared with the true effect on
the same adopters.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from math import comb
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spillover.privacy.pseudonymise import pseudonymise_email, pseudonymise_phone

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config


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


def _person_of_each_id(con: BaseBackend, truth_dir: Path, key: bytes) -> dict[tuple[str, str], str]:
    events = con.table("stg_ga4__events")
    clients = (
        events.filter(events.client_key.notnull())
        .select("client_key", "user_pseudo_id")
        .distinct()
        .to_pandas()
    )
    return person_of_each_id(truth_dir, dict(zip(clients.client_key, clients.user_pseudo_id)), key)


def person_of_each_customer(con: BaseBackend, person_of: dict[tuple[str, str], str]) -> dict[str, str]:
    """customer_key → the synthetic person most of its identifiers belong to."""
    graph = con.table("int_identity__id_graph").to_pandas()
    votes: dict[str, Counter] = defaultdict(Counter)
    for id_type, value, customer in zip(graph.id_type, graph.id_value, graph.customer_key):
        if (id_type, value) in person_of:
            votes[customer][person_of[(id_type, value)]] += 1
    return {customer: counts.most_common(1)[0][0] for customer, counts in votes.items()}


def identity_scores(con: BaseBackend, truth_dir: Path, key: bytes) -> dict[str, float | int]:
    """Pairwise precision and recall of ``int_identity__id_graph`` against the synthetic people."""
    person_of = _person_of_each_id(con, truth_dir, key)
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


def adoption_scores(con: BaseBackend, truth_dir: Path, key: bytes) -> dict[str, float | int]:
    """``fct_product_adoptions`` against ``truth/adopters.csv``.

    An adoption matches a true one when its customer's person, its product's device and its date in
    the property's time zone are the truth's. ``recall``: share of true adopters found so;
    ``precision``: share of adoption rows that match (a guest purchase nobody can be identified by
    is missed; a device bought by a cluster's second person counts as wrong).
    """
    import pandas as pd

    truth_dir = Path(truth_dir)
    impact = json.loads((truth_dir / "impact.json").read_text())
    device_of_product = {d["product_id"]: name for name, d in impact["devices"].items()}
    person_of_customer = person_of_each_customer(con, _person_of_each_id(con, truth_dir, key))
    adoptions = con.table("fct_product_adoptions").to_pandas()
    adopted_at = pd.to_datetime(adoptions.adopted_at, utc=True).dt.tz_convert(impact["property_timezone"])
    found = {
        (person_of_customer.get(customer), device_of_product.get(product), day.date().isoformat())
        for customer, product, day in zip(adoptions.customer_key, adoptions.product_id, adopted_at)
    }
    with open(truth_dir / "adopters.csv", newline="") as handle:
        truth = {(row["person_id"], row["device"], row["adopted_on"]) for row in csv.DictReader(handle)}
    matched = len(truth & found)
    return {
        "true_adopters": len(truth),
        "adoptions": len(adoptions),
        "matched": matched,
        "recall": matched / max(len(truth), 1),
        "precision": matched / max(len(adoptions), 1),
    }


def impact_scores(con: BaseBackend, config: Config, truth_dir: Path, key: bytes, estimates: Any) -> list[dict[str, Any]]:
    """Each estimate of ``mart_impact__estimates`` (a frame) against the truth.

    The true ATT is taken over the same adopters the design used (the customers' persons in
    ``truth/adopters.csv``: mean margin with the device minus without it over the horizon), and over
    every adopter whose window the data covers (``att_fully_observed``). ``covers``: the 95% interval
    holds the former. ``naive_error``: the naive "all post-purchase margin" minus the truth.
    """
    import pandas as pd

    from spillover.impact.cohorts import CohortSpec, index_rows
    from spillover.impact.facts import load_facts

    truth_dir = Path(truth_dir)
    impact = json.loads((truth_dir / "impact.json").read_text())
    device_of_product = {d["product_id"]: name for name, d in impact["devices"].items()}
    person_of_customer = person_of_each_customer(con, _person_of_each_id(con, truth_dir, key))
    adopters = pd.read_csv(truth_dir / "adopters.csv").set_index(["device", "person_id"])
    facts = load_facts(con, config.ga4.property_timezone)
    scores = []
    for row in estimates.itertuples():
        device = device_of_product.get(row.product_id)
        if device is None or pd.isna(row.estimate):
            continue
        horizon = int(row.horizon_days)
        index = index_rows(facts, CohortSpec.from_settings(config.impact, row.product_id, horizon))
        buyers = index.filter(index.treated).customer_key.to_pandas()
        persons = [(device, person_of_customer[c]) for c in buyers if c in person_of_customer]
        mine = adopters.loc[persons]
        true_att = float((mine[f"margin_with_{horizon}"] - mine[f"margin_without_{horizon}"]).mean())
        truth = impact["devices"][device]
        scores.append({
            "product_id": row.product_id,
            "horizon_days": horizon,
            "estimate": float(row.estimate),
            "ci_low": float(row.ci_low),
            "ci_high": float(row.ci_high),
            "true_att": true_att,
            "true_att_all_observed": truth["att"][str(horizon)]["att_fully_observed"],
            "adopters_scored": len(persons),
            "covers": bool(row.ci_low <= true_att <= row.ci_high),
            "error": float(row.estimate) - true_att,
            "naive_error": float(row.naive_post_purchase_margin) - true_att,
            "net_value_per_unit": float(row.net_value_per_unit),
            "true_net_value_per_unit": (truth.get("net_value_per_unit") or {}).get(str(horizon)),
            "verdict": row.verdict,
        })
    return scores
