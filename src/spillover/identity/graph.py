"""The ``identity`` stage: guarded edges → connected components → one ``customer_key`` per cluster.

A cluster's key is the md5 of its earliest-seen identifier, so rebuilding with more data keeps it:
a merge keeps the older cluster's key, and a split leaves the key with the part holding that identifier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from spillover.engine import append_rows, create_scratch_table, drop_table, table_exists, temp_name, write_table
from spillover.identity.components import connected_components
from spillover.identity.edges import candidate_edges, identifier_sightings
from spillover.identity.guards import IdentitySettings, apply_guards, identity_settings, is_blocked
from spillover.ingest.quarantine import now_utc
from spillover.progress import NullProgress, Progress

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config

EDGES = "int_identity__edges"
REFUSED = "int_identity__refused_edges"
ID_GRAPH = "int_identity__id_graph"
KEY_CHANGES = "int_identity__key_changes"
CUSTOMERS = "dim_customers"

_NODE_SEPARATOR = ":"
ANCHOR_PREFERENCE = ("member_id", "email_pid", "phone_pid", "client_key")


def _node(id_type: ibis.StringValue, id_value: ibis.StringValue) -> ibis.StringValue:
    return id_type.concat(_NODE_SEPARATOR, id_value)


def _count(con: BaseBackend, name: str) -> int:
    return int(con.table(name).count().to_pyarrow().as_py())


def build_identity(
    con: BaseBackend, config: Config, progress: Progress | None = None, *, settings: IdentitySettings | None = None
) -> dict[str, int]:
    """Write the identity tables from the staged events, members and orders; return row counts."""
    progress = progress or NullProgress()
    settings = settings or identity_settings(config)
    task = progress.task("identity", total=4)
    scratch: list[str] = []
    try:
        candidates_name = temp_name("id_candidates")
        scratch.append(candidates_name)
        threshold = settings.fuzzy_match_threshold if settings.fuzzy_matching else None
        con.create_table(candidates_name, candidate_edges(con, fuzzy_threshold=threshold))
        kept, refused = apply_guards(con.table(candidates_name), settings)
        write_table(con, EDGES, kept)
        write_table(con, REFUSED, refused)
        progress.advance(task, 1, description="identity: components")

        sightings = identifier_sightings(con)
        nodes = sightings.filter(~is_blocked(sightings.id_value, settings))
        # Numbered, so components join and group on integers rather than on long pseudonyms.
        nodes = nodes.mutate(node=_node(nodes.id_type, nodes.id_value), number=ibis.row_number())
        nodes = create_scratch_table(con, nodes, "id_nodes")
        scratch.append(nodes.get_name())
        labels, _rounds = connected_components(
            con, _numbered_edges(con.table(EDGES), nodes), max_iterations=settings.max_iterations
        )
        scratch.append(labels.get_name())
        progress.advance(task, 1, description="identity: keys")

        previous_name = None
        if table_exists(con, ID_GRAPH):
            previous_name = temp_name("id_graph_previous")
            scratch.append(previous_name)
            con.create_table(previous_name, con.table(ID_GRAPH))
        write_table(con, ID_GRAPH, _keyed_ids(nodes, labels))
        progress.advance(task, 1, description="identity: customers")
        write_table(con, CUSTOMERS, _customers(con.table(ID_GRAPH), nodes))
        changes = 0
        if previous_name is not None:
            changes = _record_key_changes(con, con.table(previous_name), con.table(ID_GRAPH))
        progress.advance(task, 1)
    finally:
        for name in scratch:
            drop_table(con, name)
    counts = {name: _count(con, name) for name in (EDGES, REFUSED, ID_GRAPH, CUSTOMERS)}
    counts[KEY_CHANGES] = changes
    return counts


def _numbered_edges(edges: ibis.Table, nodes: ibis.Table) -> ibis.Table:
    """The kept edges as ``(node_a, node_b)`` node numbers."""
    at_a, at_b = nodes.view(), nodes.view()
    joined = edges.join(at_a, (edges.id_type_a == at_a.id_type) & (edges.id_a == at_a.id_value)).join(
        at_b, (edges.id_type_b == at_b.id_type) & (edges.id_b == at_b.id_value)
    )
    return joined.select(node_a=at_a.number, node_b=at_b.number)


def _keyed_ids(nodes: ibis.Table, labels: ibis.Table) -> ibis.Table:
    """``(id_type, id_value, customer_key)``: the key is the md5 of ``id_type:id_value`` of the
    cluster's earliest-seen identifier."""
    # An identifier without any kept edge is not in ``labels``: a cluster of its own.
    labelled = nodes.left_join(labels, nodes.number == labels.node).select(
        nodes.id_type, nodes.id_value, nodes.node, nodes.first_seen, component=labels.component.coalesce(nodes.number)
    )
    # Ties (a member and its CRM email share the signup date) go to the most durable kind of id.
    durability = labelled.id_type.cases(*((t, i) for i, t in enumerate(ANCHOR_PREFERENCE)), else_=len(ANCHOR_PREFERENCE))
    rank = ibis.row_number().over(
        group_by=labelled.component, order_by=[labelled.first_seen, durability, labelled.node]
    )
    ranked = labelled.mutate(rank=rank)
    anchors = ranked.filter(ranked.rank == 0).select(
        anchor_component=ranked.component, customer_key=ranked.node.hexdigest("md5")
    )
    labelled = labelled.view()  # a relation of its own, not one more link of the join above
    keyed = labelled.join(anchors, labelled.component == anchors.anchor_component)
    return keyed.select(labelled.id_type, labelled.id_value, anchors.customer_key)


def _customers(id_graph: ibis.Table, nodes: ibis.Table) -> ibis.Table:
    """One row per customer: when first and last seen, how many ids of each type, its member id."""
    seen = id_graph.join(nodes, ["id_type", "id_value"]).select(
        id_graph.customer_key, id_graph.id_type, id_graph.id_value, nodes.first_seen, nodes.last_seen
    )

    def count_of(id_type: str) -> ibis.IntegerValue:
        return (seen.id_type == id_type).cast("int64").sum()

    return seen.group_by("customer_key").aggregate(
        first_seen=seen.first_seen.min(),
        last_seen=seen.last_seen.max(),
        client_keys=count_of("client_key"),
        member_ids=count_of("member_id"),
        email_pids=count_of("email_pid"),
        phone_pids=count_of("phone_pid"),
        # With several (a person registered twice) the lowest id stands for the cluster.
        member_id=ibis.ifelse(seen.id_type == "member_id", seen.id_value, ibis.null("string")).min(),
    )


def _record_key_changes(con: BaseBackend, previous: ibis.Table, current: ibis.Table) -> int:
    """Append to ``int_identity__key_changes`` each previous key whose ids moved to another key.

    ``merged``: the previous key is gone (its cluster joined an older one); ``split``: the previous
    key lives on, but some of its ids now belong to another customer.
    """
    moved = previous.join(current, ["id_type", "id_value"]).filter(
        lambda t: t.customer_key != t.customer_key_right
    )
    pairs = moved.group_by(previous_key=moved.customer_key, customer_key=moved.customer_key_right).aggregate(
        ids_moved=moved.count()
    )
    surviving = current.select(surviving_key=current.customer_key).distinct()
    labelled = pairs.left_join(surviving, pairs.previous_key == surviving.surviving_key)
    changes = labelled.select(
        changed_at=ibis.literal(now_utc()),
        previous_key=labelled.previous_key,
        customer_key=labelled.customer_key,
        change=ibis.ifelse(labelled.surviving_key.isnull(), "merged", "split"),
        ids_moved=labelled.ids_moved.cast("int64"),
    )
    frame = changes.to_pyarrow()
    if frame.num_rows or not table_exists(con, KEY_CHANGES):
        append_rows(con, KEY_CHANGES, frame)
    return frame.num_rows
