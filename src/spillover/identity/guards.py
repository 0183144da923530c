"""Guards on identity edges: placeholder values and over-shared identifiers may not merge customers.

``IdentitySettings`` is the ``[identity]`` section of the project config; every refused edge is kept,
with its reason, so a merge that did not happen is as visible as one that did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
from pydantic import BaseModel, ConfigDict, Field, field_validator

from spillover.identity.edges import EDGE_COLUMNS, ID_TYPES

if TYPE_CHECKING:
    from spillover.config import Config

DEFAULT_BLOCKED_VALUES = (
    "", "0", "-1", "null", "none", "nil", "nan", "undefined", "anonymous", "unknown", "guest",
    "test", "n/a", "na", "(not set)", "(none)", "not set", "default",
)

#: "id_type->other_type": the most distinct ``other_type`` ids one ``id_type`` id may link to.
DEFAULT_MAX_LINKS = {
    "client_key->member_id": 3,  # more: a shared or kiosk device
    "client_key->email_pid": 3,
    "email_pid->member_id": 3,  # more: a shared or placeholder address
    "phone_pid->member_id": 3,  # more: a switchboard or placeholder number
    "member_id->client_key": 50,  # more: a test or staff account used on many devices
}

REFUSED_COLUMNS = (*EDGE_COLUMNS, "reason", "offending_type", "offending_id", "links", "link_limit")


class IdentitySettings(BaseModel):
    """How identifiers are linked into customers (the ``[identity]`` config section)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    blocked_values: tuple[str, ...] = Field(
        DEFAULT_BLOCKED_VALUES, description="identifier values (compared trimmed, lower-case) never used to link"
    )
    max_links: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_MAX_LINKS),
        description='"id_type->other_type" = the most distinct other ids one id may link to',
    )
    max_iterations: int = Field(50, ge=1, description="cap on connected-components rounds")

    @field_validator("max_links")
    @classmethod
    def _known_types(cls, value: dict[str, int]) -> dict[str, int]:
        for pair, limit in value.items():
            one, sep, other = pair.partition("->")
            if not sep or one not in ID_TYPES or other not in ID_TYPES:
                raise ValueError(
                    f"max_links key {pair!r} is not 'id_type->other_type' with types among {', '.join(ID_TYPES)}"
                )
            if limit < 1:
                raise ValueError(f"max_links[{pair!r}] = {limit}; a limit must be at least 1")
        return value


def identity_settings(config: Config) -> IdentitySettings:
    """The project's identity settings, or the defaults when its config has no such section."""
    section = getattr(config, "identity", None)
    if section is None:
        return IdentitySettings()
    if isinstance(section, IdentitySettings):
        return section
    return IdentitySettings.model_validate(section.model_dump() if isinstance(section, BaseModel) else section)


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
