"""Candidate identity edges from the staged tables, and the guards that refuse some of them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from spillover.config import Config
from spillover.identity.edges import candidate_edges, identifier_sightings
from spillover.identity.guards import IdentitySettings, apply_guards, identity_settings
from tests.identity.staged import at, write_staged


def _rows(table, *columns):
    frame = table.select(*columns).to_pyarrow().to_pylist()
    return sorted(tuple(row[c] for c in columns) for row in frame)


def _edge_set(table):
    return _rows(table, "source", "id_type_a", "id_a", "id_type_b", "id_b")


def test_edges_link_logins_crm_orders_and_purchases(con):
    write_staged(
        con,
        events=[("c1", None, 1, None), ("c1", "M1", 2, None), ("c1", "M1", 5, None),
                ("c2", None, 3, "T1"), ("c3", None, 4, "T2")],
        members=[("M1", "e1", "p1", 1), ("M2", "e2", None, 2)],
        orders=[("O1", "M2", None, 3, "T1"), ("O2", None, "e9", 4, "T2"), ("O3", "M1", "e1", 6, None)],
    )
    edges = candidate_edges(con)
    assert _edge_set(edges) == [
        ("crm", "member_id", "M1", "email_pid", "e1"),
        ("crm", "member_id", "M1", "phone_pid", "p1"),
        ("crm", "member_id", "M2", "email_pid", "e2"),
        ("ga4_login", "client_key", "c1", "member_id", "M1"),
        ("ga4_purchase", "client_key", "c2", "member_id", "M2"),
        ("ga4_purchase", "client_key", "c3", "email_pid", "e9"),
        ("orders", "member_id", "M1", "email_pid", "e1"),
    ]
    login = edges.filter(edges.source == "ga4_login").to_pyarrow().to_pylist()[0]
    assert (login["first_seen"], login["last_seen"]) == (at(2), at(5))

    seen = {(r["id_type"], r["id_value"]): r for r in identifier_sightings(con).to_pyarrow().to_pylist()}
    assert len(seen) == 9  # c1 c2 c3, M1 M2, e1 e2 e9, p1: M1 and e1 seen in CRM and orders count once
    assert seen[("member_id", "M1")]["first_seen"].date().isoformat() == "2026-03-01"
    assert seen[("member_id", "M1")]["last_seen"] == at(6)


def test_guards_refuse_placeholders_and_shared_devices(duck):
    write_staged(
        duck,
        events=[("kiosk", f"M{i}", i, None) for i in range(1, 5)] + [("c9", "anonymous", 1, None)],
        members=[(f"M{i}", f"e{i}", "(not set)" if i == 1 else None, i) for i in range(1, 5)],
    )
    kept, refused = apply_guards(candidate_edges(duck), IdentitySettings())
    assert _edge_set(kept) == [("crm", "member_id", f"M{i}", "email_pid", f"e{i}") for i in range(1, 5)]
    assert _rows(refused, "reason", "offending_type", "offending_id", "id_b", "links", "link_limit") == [
        ("blocked_value", "member_id", "anonymous", "anonymous", None, None),
        ("blocked_value", "phone_pid", "(not set)", "(not set)", None, None),
        *[("too_many_links", "client_key", "kiosk", f"M{i}", 4, 3) for i in range(1, 5)],
    ]


def test_limits_are_configurable_per_pair_of_types(duck):
    write_staged(duck, members=[("M1", "shared", None, 1), ("M2", "shared", None, 1)])
    strict = IdentitySettings(max_links={"email_pid->member_id": 1})
    kept, refused = apply_guards(candidate_edges(duck), strict)
    assert _rows(kept, "id_a") == []
    assert _rows(refused, "offending_id", "id_a", "links") == [("shared", "M1", 2), ("shared", "M2", 2)]
    kept, refused = apply_guards(candidate_edges(duck), IdentitySettings())
    assert _rows(kept, "id_a") == [("M1",), ("M2",)]


def test_settings_name_a_bad_limit():
    with pytest.raises(ValidationError, match="max_links key 'email->member_id' is not 'id_type->other_type'"):
        IdentitySettings(max_links={"email->member_id": 2})
    with pytest.raises(ValidationError, match=r"max_links\['client_key->member_id'\] = 0; a limit must be at least 1"):
        IdentitySettings(max_links={"client_key->member_id": 0})


def test_settings_default_when_the_config_has_no_identity_section(tmp_path):
    settings = identity_settings(Config(project_dir=tmp_path))
    assert settings.max_links["client_key->member_id"] == 3
    assert "(not set)" in settings.blocked_values
