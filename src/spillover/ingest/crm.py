"""The CRM member contract and its transform into ``stg_crm__members``.

Emails and phones become keyed pseudonyms (``email_pid``, ``phone_pid``) with a visible status; names,
addresses and postcodes are dropped unless ``privacy.allowed_attributes`` keeps them as attributes.
Before they are dropped, fuzzy matching (``identity.fuzzy``) compares them in memory, and the member
pairs it finds go to ``stg_crm__member_matches``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pyarrow as pa

from spillover.engine import drop_table, table_exists, upload_arrow, write_table
from spillover.errors import SpilloverConfigError
from spillover.identity.fuzzy import FEATURES, find_duplicate_members, member_features
from spillover.ingest.tabular import Column, SourceSpec
from spillover.privacy.pseudonymise import pseudonymise_email, pseudonymise_phone

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from spillover.config import Config

__all__ = ["MEMBERS_TABLE", "MATCHES_TABLE", "members_spec", "attribute_name", "write_member_matches"]

MEMBERS_TABLE = "stg_crm__members"
MATCHES_TABLE = "stg_crm__member_matches"

#: Contract columns holding direct identifiers, and the kind each one is (used for redaction).
DROPPED_IDENTIFIERS = {
    "first_name": "name",
    "last_name": "name",
    "address": "address",
    "postcode": "postcode",
}
PSEUDONYMISED = ("email", "phone")

_BASE_SCHEMA = pa.schema(
    [
        ("member_id", pa.string()),
        ("email_pid", pa.string()),
        ("email_status", pa.string()),  # valid | invalid | missing
        ("phone_pid", pa.string()),
        ("phone_status", pa.string()),  # valid | invalid | missing
        ("signup_date", pa.date32()),
        ("tier", pa.string()),
        ("region", pa.string()),
        ("consent_analytics", pa.bool_()),
        ("consent_ads", pa.bool_()),
    ]
)


def attribute_name(column: str) -> str:
    """The table column for a kept attribute: lowercase, anything but letters and digits as ``_``."""
    name = re.sub(r"[^0-9a-z]+", "_", column.strip().lower()).strip("_")
    return name if name and not name[0].isdigit() else f"attr_{name}"


def members_spec(config: Config, *, key: bytes) -> SourceSpec:
    """The CRM spec under ``config``: its allowed attributes become extra string columns."""
    allowed = list(dict.fromkeys(config.privacy.allowed_attributes))
    # An attribute is the email or phone if it bears our name or the name the file gives them.
    identifier_names = {attribute_name(config.columns.crm.get(ours, ours)) for ours in PSEUDONYMISED}
    forbidden = [name for name in allowed if attribute_name(name) in identifier_names | set(PSEUDONYMISED)]
    if forbidden:
        raise SpilloverConfigError(
            f"privacy.allowed_attributes in spillover.toml names {', '.join(forbidden)}; emails and "
            "phones are always pseudonymised and cannot be kept as plain attributes: remove them"
        )
    base_names = set(_BASE_SCHEMA.names)
    kept_identifiers = [name for name in allowed if attribute_name(name) in DROPPED_IDENTIFIERS]
    extra_attributes = [
        name for name in allowed
        if attribute_name(name) not in DROPPED_IDENTIFIERS and attribute_name(name) not in base_names
    ]
    region = config.privacy.phone_default_region
    kept = {attribute_name(name) for name in kept_identifiers}
    columns = (
        Column("member_id", required=True, pseudonymous_id=True, hint="your CRM's member number"),
        Column("email", identifier="email"),
        Column("phone", identifier="phone"),
        *(
            Column(name, identifier=kind) if name not in kept else Column(name, free_text=True)
            for name, kind in DROPPED_IDENTIFIERS.items()
        ),
        Column("signup_date", "date", required=True, hint="YYYY-MM-DD"),
        Column("tier", free_text=True),
        Column("region", free_text=True),
        Column("consent_analytics", "boolean"),
        Column("consent_ads", "boolean"),
        *(Column(attribute_name(name), file_name=name, free_text=True) for name in extra_attributes),
    )
    attributes = [attribute_name(name) for name in kept_identifiers + extra_attributes]
    schema = pa.schema(list(_BASE_SCHEMA) + [(name, pa.string()) for name in attributes])

    def to_row(parsed: dict[str, object]) -> dict[str, object]:
        email = pseudonymise_email(parsed["email"], key)  # type: ignore[arg-type]
        phone = pseudonymise_phone(parsed["phone"], key, region)  # type: ignore[arg-type]
        row = {name: parsed[name] for name in ("member_id", "signup_date", "tier", "region",
                                               "consent_analytics", "consent_ads", *attributes)}
        row.update(email_pid=email.pid, email_status=email.status,
                   phone_pid=phone.pid, phone_status=phone.status)
        return row

    return SourceSpec(
        source="crm",
        table=MEMBERS_TABLE,
        columns=columns,
        key=("member_id",),
        replace_by=("member_id",),
        schema=schema,
        to_row=to_row,
        features=member_features if config.identity.fuzzy_matching else None,
        use_features=write_member_matches if config.identity.fuzzy_matching else None,
    )


def write_member_matches(
    con: BaseBackend, features: list[dict[str, object]], lineage: dict[str, str]
) -> dict[str, int]:
    """Match the file's members against each other and replace, in ``stg_crm__member_matches``,
    every pair that involves one of them (pairs across files are not looked for: the raw values of
    earlier files are gone). Returns the table's row count."""
    members = pa.Table.from_pylist(features, schema=FEATURES)
    matches = find_duplicate_members(members)
    for name, value in lineage.items():
        matches = matches.append_column(name, pa.array([value] * matches.num_rows, pa.string()))
    if not table_exists(con, MATCHES_TABLE):
        write_table(con, MATCHES_TABLE, matches)
    else:
        loaded = upload_arrow(con, members.select(["member_id"]), prefix="crm_members")
        new = upload_arrow(con, matches, prefix="crm_matches")
        try:
            existing = con.table(MATCHES_TABLE)
            other = loaded.view()
            kept = existing.anti_join(loaded, existing.member_id_l == loaded.member_id).anti_join(
                other, existing.member_id_r == other.member_id
            )
            write_table(con, MATCHES_TABLE, kept.select(new.columns).union(new))
        finally:
            drop_table(con, loaded.get_name())
            drop_table(con, new.get_name())
    return {MATCHES_TABLE: int(con.table(MATCHES_TABLE).count().to_pyarrow().as_py())}
