"""Fuzzy matching of CRM members registered twice: found at ingest, linked by the identity stage.

Scored against the synthetic ecosystem, whose truth says which member ids are one person (about 2%
of members registered a second time with a typo in the name or email, and the phone rewritten or
left out).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from itertools import combinations

import pyarrow as pa
import pytest
from pydantic import ValidationError

from spillover.config import Config, IdentitySettings
from spillover.engine import write_table
from spillover.identity.fuzzy import FEATURES, MATCHES_SCHEMA, find_duplicate_members, member_features
from spillover.identity.graph import build_identity
from spillover.ingest.tabular import ingest_source
from spillover.synth import generate
from tests.identity.staged import write_staged

HEADER = "member_id,email,phone,first_name,last_name,address,postcode,signup_date\n"
ANN = "M1,ann.lee81@example.com,(212) 555-0101,Ann,Lee,12 Elm Street,10001,2024-01-05\n"
ANN_AGAIN = "M2,ann.le81@example.com,,Anne,Lee,12 Elm Street,10001,2024-03-09\n"  # two typos, no phone
BOB = "M3,bob.ray@example.org,(303) 555-0177,Bob,Ray,4 Oak Road,80202,2024-02-01\n"
CID = "M4,cid.moe@example.net,(313) 555-0133,Cid,Moe,9 Pine Avenue,48201,2024-02-11\n"


def _write(path, *rows: str):
    path.write_text(HEADER + "".join(rows))
    return path


def _pairs(con) -> dict[tuple[str, str], float]:
    rows = con.table("stg_crm__member_matches").to_pyarrow().to_pylist()
    return {(r["member_id_l"], r["member_id_r"]): r["match_probability"] for r in rows}


def test_member_features_normalise_the_raw_values_they_compare():
    parsed = dict(member_id="M9", first_name=" Mary-Jane ", last_name="O'Neil", email=" Mary.J@Ex.COM ",
                  phone="+1 (212) 555-0143", address="12b  Baker Street", postcode=" NW1 ")
    assert member_features(parsed) == {
        "member_id": "M9", "first_name": "maryjane", "last_name": "oneil", "email": "mary.j@ex.com",
        "email_local": "mary.j", "phone": "2125550143", "address": "12b baker street",
        "street": "baker street", "postcode": "nw1",
    }
    empty = member_features(dict(member_id="M10"))
    assert set(empty) == set(FEATURES.names) and [v for k, v in empty.items() if k != "member_id"] == [None] * 8


def test_a_typo_registration_is_matched_and_only_ids_and_scores_come_out():
    rows = [ANN, ANN_AGAIN, BOB, CID]
    names = HEADER.strip().split(",")
    features = pa.Table.from_pylist(
        [member_features(dict(zip(names, row.strip().split(",")))) for row in rows], schema=FEATURES
    )
    matches = find_duplicate_members(features)
    assert matches.schema == MATCHES_SCHEMA
    assert matches.column("member_id_l").to_pylist() == ["M1"]
    assert matches.column("member_id_r").to_pylist() == ["M2"]
    assert matches.column("match_probability")[0].as_py() > 0.99
    assert find_duplicate_members(features.slice(2)).num_rows == 0  # Bob and Cid: nothing in common
    assert find_duplicate_members(features.slice(0, 1)).num_rows == 0


def test_crm_ingest_writes_the_pairs_and_a_reload_replaces_those_of_its_members(con, config, tmp_path):
    first = ingest_source(con, "crm", _write(tmp_path / "a.csv", ANN, ANN_AGAIN, BOB, CID), config=config)
    assert first.tables["stg_crm__member_matches"] == 1
    assert list(_pairs(con)) == [("M1", "M2")]
    assert set(con.table("stg_crm__member_matches").columns) == {
        "member_id_l", "member_id_r", "match_probability", "match_weight", "_source_file", "_load_id",
    }
    # M2 corrected to someone else entirely: the pair goes; loading it again does not double anything.
    fixed = "M2,zoe.king@example.com,(404) 555-0190,Zoe,King,77 Lake Drive,30301,2024-03-09\n"
    ingest_source(con, "crm", _write(tmp_path / "b.csv", fixed, BOB), config=config)
    assert _pairs(con) == {}
    ingest_source(con, "crm", _write(tmp_path / "a.csv", ANN, ANN_AGAIN, BOB, CID), config=config)
    ingest_source(con, "crm", _write(tmp_path / "a.csv", ANN, ANN_AGAIN, BOB, CID), config=config)
    assert list(_pairs(con)) == [("M1", "M2")]


def test_fuzzy_matching_can_be_switched_off(con, tmp_path):
    config = Config(project_dir=tmp_path, identity=IdentitySettings(fuzzy_matching=False))
    result = ingest_source(con, "crm", _write(tmp_path / "a.csv", ANN, ANN_AGAIN), config=config)
    assert result.tables == {"stg_crm__members": 2}
    assert "stg_crm__member_matches" not in con.list_tables()


def test_the_identity_stage_links_pairs_at_or_above_the_threshold(con, tmp_path):
    write_staged(con, members=[("M1", "e1", "p1", 1), ("M2", "e2", None, 9), ("M3", "e3", None, 2), ("M4", "e4", None, 3)])
    write_table(con, "stg_crm__member_matches", pa.table({
        "member_id_l": ["M1", "M3"], "member_id_r": ["M2", "M4"],
        "match_probability": [0.999, 0.95], "match_weight": [10.0, 4.2],
    }))

    def customers(**identity) -> list[set[str]]:
        build_identity(con, Config(project_dir=tmp_path, identity=IdentitySettings(**identity)))
        by_key = defaultdict(set)
        for row in con.table("int_identity__id_graph").to_pyarrow().to_pylist():
            if row["id_type"] == "member_id":
                by_key[row["customer_key"]].add(row["id_value"])
        return sorted(by_key.values(), key=sorted)

    assert customers() == [{"M1", "M2"}, {"M3"}, {"M4"}]  # default threshold 0.99
    edges = con.table("int_identity__edges").to_pyarrow().to_pylist()
    fuzzy = [e for e in edges if e["source"] == "crm_fuzzy"]
    assert [(e["id_a"], e["id_b"], e["first_seen"].day) for e in fuzzy] == [("M1", "M2", 9)]  # the second signup
    assert customers(fuzzy_match_threshold=0.9) == [{"M1", "M2"}, {"M3", "M4"}]
    assert customers(fuzzy_matching=False) == [{"M1"}, {"M2"}, {"M3"}, {"M4"}]


def test_the_threshold_cannot_go_below_what_ingest_keeps():
    with pytest.raises(ValidationError, match="greater than or equal to 0.5"):
        IdentitySettings(fuzzy_match_threshold=0.3)


@pytest.fixture(scope="module")
def synthetic_matches(tmp_path_factory):
    """The synthetic CRM (3,000 people, 2,293 members, 50 registered twice) through CRM ingest."""
    from spillover.engine import connect

    directory = tmp_path_factory.mktemp("fuzzy")
    generate(directory / "data", customers=3000, days=1, seed=3)
    person_of = {}
    with open(directory / "data" / "truth" / "identity.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["id_type"] == "member_id":
                person_of[row["id_value"]] = row["person_id"]
    con = connect(f"duckdb:///{directory / 'warehouse.duckdb'}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPILLOVER_KEY", "test-key-0123456789abcdef0123456789abcdef")
        ingest_source(con, "crm", directory / "data" / "crm" / "members.csv", config=Config(project_dir=directory))
    found = _pairs(con)
    con.disconnect()
    members_of = defaultdict(list)
    for member, person in person_of.items():
        members_of[person].append(member)
    true_pairs = {tuple(sorted(pair)) for ids in members_of.values() for pair in combinations(ids, 2)}
    return found, true_pairs


@pytest.mark.slow
@pytest.mark.parametrize("threshold", [0.5, 0.99])
def test_duplicate_registrations_are_found_with_high_precision_and_recall(synthetic_matches, threshold):
    found, true_pairs = synthetic_matches
    assert len(true_pairs) == 50
    kept = {pair for pair, probability in found.items() if probability >= threshold}
    precision = len(kept & true_pairs) / len(kept)
    recall = len(kept & true_pairs) / len(true_pairs)
    # Measured: 1.000 and 1.000 at both thresholds (seed 3); a few same-name neighbours sharing a
    # postcode are what would cost precision.
    assert precision >= 0.98
    assert recall >= 0.96
