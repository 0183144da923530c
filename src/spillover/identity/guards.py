"""Guards on identity edges: placeholder values and over-shared identifiers may not merge customers.

``IdentitySettings`` (in ``spillover.config``) is the ``[identity]`` section; every refused edge is kept,
with its reason, so a merge that did not happen is as visible as one that did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis

from spillover.config import IdentitySettings
from spillover.identity.edges import EDGE_COLUMNS

if TYPE_CHECKING:
    from spillover.config import Config

REFUSED_COLUMNS = (*EDGE_COLUMNS, "reason", "offending_type", "offending_id", "links", "link_limit")


def identity_settings(config: Config) -> IdentitySettings:
    """The project's ``[identity]`` settings."""
    return config.identity


def is_blocked(value: ibis.StringValue, settings: IdentitySettings) -> ibis.BooleanValue:
    blocked = [v.strip().lower() for v in settings.blocked_values]
    return value.strip().lower().isin(blocked)


def _limit(id_type: ibis.StringValue, other_type: ibis.StringValue, settings: IdentitySettings) -> ibis.Value:
    branches = []
    for pair, limit in settings.max_links.items():
        one, _, other = pair.partition("->")
        branches.append(((id_type == one) & (other_type == other), limit))
    if not branches:
        return ibis.null("int64")
    return ibis.cases(*branches, else_=ibis.null("int64")).cast("int64")


def _over_shared(edges: ibis.Table, settings: IdentitySettings) -> ibis.Table:
    """Identifiers linked to more distinct ids of one type than their limit allows."""
    forward = edges.select(id_type=edges.id_type_a, id_value=edges.id_a, other_type=edges.id_type_b, other=edges.id_b)
    backward = edges.select(id_type=edges.id_type_b, id_value=edges.id_b, other_type=edges.id_type_a, other=edges.id_a)
    both = forward.union(backward, distinct=True)
    links = both.group_by("id_type", "id_value", "other_type").aggregate(links=both.other.nunique())
    limited = links.mutate(link_limit=_limit(links.id_type, links.other_type, settings))
    return limited.filter(limited.link_limit.notnull() & (limited.links > limited.link_limit))


def apply_guards(candidates: ibis.Table, settings: IdentitySettings) -> tuple[ibis.Table, ibis.Table]:
    """Split candidate edges into (kept, refused); refused rows say which guard and which id."""
    blocked_a = is_blocked(candidates.id_a, settings)
    blocked_b = is_blocked(candidates.id_b, settings)
    blocked = candidates.filter(blocked_a | blocked_b).select(
        *EDGE_COLUMNS,
        reason=ibis.literal("blocked_value"),
        offending_type=ibis.ifelse(blocked_a, candidates.id_type_a, candidates.id_type_b),
        offending_id=ibis.ifelse(blocked_a, candidates.id_a, candidates.id_b),
        links=ibis.null("int64"),
        link_limit=ibis.null("int64"),
    )
    usable = candidates.filter(~(blocked_a | blocked_b))
    over = _over_shared(usable, settings)
    side_a = over.view()
    side_b = over.view()
    checked = usable.left_join(
        side_a,
        [usable.id_type_a == side_a.id_type, usable.id_a == side_a.id_value, usable.id_type_b == side_a.other_type],
    ).select(*EDGE_COLUMNS, a_links=side_a.links, a_limit=side_a.link_limit)
    checked = checked.left_join(
        side_b,
        [checked.id_type_b == side_b.id_type, checked.id_b == side_b.id_value, checked.id_type_a == side_b.other_type],
    ).select(*EDGE_COLUMNS, "a_links", "a_limit", b_links=side_b.links, b_limit=side_b.link_limit)
    a_over = checked.a_links.notnull()
    b_over = checked.b_links.notnull()
    kept = checked.filter(~a_over & ~b_over).select(*EDGE_COLUMNS)
    shared = checked.filter(a_over | b_over).select(
        *EDGE_COLUMNS,
        reason=ibis.literal("too_many_links"),
        offending_type=ibis.ifelse(a_over, checked.id_type_a, checked.id_type_b),
        offending_id=ibis.ifelse(a_over, checked.id_a, checked.id_b),
        links=ibis.ifelse(a_over, checked.a_links, checked.b_links).cast("int64"),
        link_limit=ibis.ifelse(a_over, checked.a_limit, checked.b_limit).cast("int64"),
    )
    return kept, blocked.union(shared, distinct=False)
