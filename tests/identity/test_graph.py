"""The identity stage: customers from guarded edges, stable keys, and order-independent results."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spillover.identity.graph import build_identity
from tests.identity.staged import at, write_staged


def _key(node: str) -> str:
    return hashlib.md5(node.encode()).hexdigest()


def _clusters(con) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for row in con.table("int_identity__id_graph").to_pyarrow().to_pylist():
        groups.setdefault(row["customer_key"], set()).add(f"{row['id_type']}:{row['id_value']}")
    return groups


SHOP = dict(
    events=[("c1", "M1", 2, None), ("c2", None, 3, "T1"), ("c3", None, 1, None), ("c4", None, 4, "T2")]
    + [("kiosk", f"M{i}", 5, None) for i in range(1, 5)],
    members=[("M1", "e1", "p1", 1)] + [(f"M{i}", f"e{i}", None, i) for i in range(2, 5)],
    orders=[("O1", "M1", None, 3, "T1"), ("O2", None, "e9", 4, "T2")],
)


def test_customers_join_logins_crm_and_purchases_but_not_shared_devices(con, config):
    write_staged(con, **SHOP)
    counts = build_identity(con, config)
    clusters = _clusters(con)
    assert sorted(clusters.values(), key=sorted) == sorted([
        {"client_key:c1", "client_key:c2", "member_id:M1", "email_pid:e1", "phone_pid:p1"},
        {"client_key:c3"},
        {"client_key:c4", "email_pid:e9"},
        {"client_key:kiosk"},
        {"member_id:M2", "email_pid:e2"},
        {"member_id:M3", "email_pid:e3"},
        {"member_id:M4", "email_pid:e4"},
    ], key=sorted)
    assert counts == {
        "int_identity__edges": 8,  # 5 crm, the c1 login, the c2 and c4 purchases
        "int_identity__refused_edges": 4,  # the kiosk's four logins
        "int_identity__id_graph": 15,
        "dim_customers": 7,
        "int_identity__key_changes": 0,
    }
    customers = {r["customer_key"]: r for r in con.table("dim_customers").to_pyarrow().to_pylist()}
    member_one = customers[_key("member_id:M1")]  # signed up on day 1: the cluster's earliest id
    assert (member_one["client_keys"], member_one["member_ids"], member_one["email_pids"], member_one["phone_pids"]) == (2, 1, 1, 1)
    assert member_one["member_id"] == "M1"
    assert member_one["first_seen"].date().isoformat() == "2026-03-01"
    # M1's login on the kiosk still counts as a sighting (Spark reads timestamps back without a zone)
    assert member_one["last_seen"].replace(tzinfo=None) == at(5).replace(tzinfo=None)
    assert customers[_key("email_pid:e9")]["member_id"] is None  # seen with c4 at the same instant: the email anchors


def test_rebuilding_with_more_data_keeps_keys_and_records_merges_and_splits(duck, config):
    older = dict(members=[("M1", "e1", None, 1)], events=[("c1", None, 2, None)])
    write_staged(duck, **older)
    build_identity(duck, config)
    assert set(_clusters(duck)) == {_key("member_id:M1"), _key("client_key:c1")}

    write_staged(duck, members=older["members"], events=[("c1", None, 2, None), ("c1", "M1", 3, None)])
    counts = build_identity(duck, config)
    assert _clusters(duck) == {_key("member_id:M1"): {"member_id:M1", "email_pid:e1", "client_key:c1"}}
    assert counts["int_identity__key_changes"] == 1

    write_staged(duck, **older)  # the login is withdrawn: the cluster splits again
    counts = build_identity(duck, config)
    assert set(_clusters(duck)) == {_key("member_id:M1"), _key("client_key:c1")}
    changes = duck.table("int_identity__key_changes").order_by("changed_at").to_pyarrow().to_pylist()
    assert [(c["previous_key"], c["customer_key"], c["change"], c["ids_moved"]) for c in changes] == [
        (_key("client_key:c1"), _key("member_id:M1"), "merged", 1),
        (_key("member_id:M1"), _key("client_key:c1"), "split", 1),
    ]
    assert build_identity(duck, config)["int_identity__key_changes"] == 0  # idempotent


logins = st.lists(
    st.tuples(st.sampled_from(["c1", "c2", "c3", "c4", "c5"]), st.sampled_from([None, "M1", "M2", "M3", "M4"]),
              st.integers(1, 9)),
    min_size=1, max_size=12,
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=logins, order=st.randoms(use_true_random=False))
def test_customers_do_not_depend_on_row_order_and_rebuilds_change_nothing(duck, config, events, order):
    members = [("M1", "e1", "p", 1), ("M2", "e2", "p", 2), ("M3", "e3", None, 3), ("M4", "e1", None, 4)]
    rows = [(client, member, day, None) for client, member, day in events]
    write_staged(duck, events=rows, members=members)
    build_identity(duck, config)
    first = _clusters(duck)
    shuffled = list(rows)
    order.shuffle(shuffled)
    write_staged(duck, events=shuffled, members=list(reversed(members)))
    assert build_identity(duck, config)["int_identity__key_changes"] == 0
    assert _clusters(duck) == first
