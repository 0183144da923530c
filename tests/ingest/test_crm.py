"""CRM members: pseudonyms at the door, visible identifier status, quarantine by line, re-loads."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest

from spillover.config import ColumnsConfig, Config, PrivacyConfig
from spillover.errors import SpilloverConfigError, SpilloverInputError
from spillover.ingest.crm import members_spec
from spillover.ingest.tabular import check_file, ingest_source

KEY = b"test-key-0123456789abcdef0123456789abcdef"  # the key tests/conftest.py sets

MEMBER_COLUMNS = [
    "member_id", "email_pid", "email_status", "phone_pid", "phone_status", "signup_date", "tier",
    "region", "consent_analytics", "consent_ads", "_source_file", "_source_line", "_load_id",
]


def _pid(normalised: str) -> str:
    return hmac.new(KEY, normalised.encode(), hashlib.sha256).hexdigest()


def _rows(con, table: str, drop=("_load_id", "_source_file")) -> dict[str, dict]:
    records = con.table(table).to_pyarrow().to_pylist()
    return {r["member_id"]: {k: v for k, v in r.items() if k not in drop} for r in records}


def _quarantine(con) -> set[tuple[int, str | None, str]]:
    rows = con.table("ops_quarantine").to_pyarrow().to_pylist()
    return {(r["source_line"], r["column_name"], r["reason"]) for r in rows}


def test_members_load_with_pseudonyms_and_every_bad_row_quarantined_by_line(con, config, fixtures):
    result = ingest_source(con, "crm", fixtures / "crm" / "members.csv", config=config)

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined, result.duplicates_dropped) == (
        13, 4, 8, 1,
    )
    assert result.ignored_columns == ["favourite_colour"]
    assert con.table("stg_crm__members").columns == tuple(MEMBER_COLUMNS)
    members = _rows(con, "stg_crm__members")
    assert sorted(members) == ["M001", "M002", "M003", "M008"]
    assert members["M001"] == {
        "member_id": "M001",
        "email_pid": _pid("alice.smith@example.com"),
        "email_status": "valid",
        "phone_pid": _pid("+12025550143"),
        "phone_status": "valid",
        "signup_date": dt.date(2024, 1, 15),
        "tier": "gold",
        "region": "north",
        "consent_analytics": True,
        "consent_ads": False,
        "_source_line": 2,
    }
    assert members["M002"]["phone_pid"] == _pid("+12125550199")
    assert members["M002"]["_source_line"] == 3  # its quoted address spans lines 3-4
    # An unusable phone is not silently dropped: its status says so.
    assert {k: members["M003"][k] for k in ("email_pid", "email_status", "phone_pid", "phone_status")} == {
        "email_pid": None, "email_status": "missing", "phone_pid": None, "phone_status": "invalid",
    }
    assert (members["M003"]["consent_analytics"], members["M003"]["consent_ads"]) == (None, None)
    assert (members["M008"]["email_status"], members["M008"]["phone_status"]) == ("invalid", "invalid")

    assert _quarantine(con) == {
        (6, "signup_date", "invalid_date"),
        (7, "consent_analytics", "invalid_boolean"),
        (8, None, "malformed_row"),
        (9, "member_id", "missing_required_value"),
        (12, "tier", "conflicting_duplicate"),
        (13, "tier", "conflicting_duplicate"),
        (15, "member_id", "personal_data_in_id"),
        (17, "tier", "personal_data_in_text"),
    }
    raw = {r["source_line"]: r["raw"] for r in con.table("ops_quarantine").to_pyarrow().to_pylist()}
    assert raw[6] == (
        "M004,<redacted:email>,<redacted:phone>,<redacted:name>,<redacted:name>,<redacted:address>,"
        "<redacted:postcode>,03/01/2024,gold,west,1,0,"
    )
    # A row whose fields cannot be trusted to sit under their headers keeps only what precedes them.
    assert raw[8] == "M006,<redacted>,<redacted>,<redacted>,<redacted>"
    assert raw[17].endswith("2024-03-10,call <redacted:email>,north,y,y,")
    loads = con.table("ops_loads").to_pyarrow().to_pylist()
    assert [(r["rows_read"], r["rows_loaded"], r["rows_quarantined"]) for r in loads] == [(13, 4, 8)]


def test_reloading_leaves_the_same_rows_and_a_newer_file_upserts_by_member_id(con, config, fixtures, tmp_path):
    members = fixtures / "crm" / "members.csv"
    ingest_source(con, "crm", members, config=config)
    first = _rows(con, "stg_crm__members")
    again = ingest_source(con, "crm", members, config=config)
    assert _rows(con, "stg_crm__members") == first
    assert again.tables == {"stg_crm__members": 4, "stg_crm__member_matches": 0}

    update = tmp_path / "update.csv"
    update.write_text(
        "member_id,email,signup_date,tier\n"
        "M001,alice.smith@example.com,2024-01-15,platinum\n"
        "M010,new.member@example.com,2024-05-01,bronze\n"
    )
    ingest_source(con, "crm", update, config=config)
    after = _rows(con, "stg_crm__members")
    assert sorted(after) == ["M001", "M002", "M003", "M008", "M010"]
    assert after["M001"]["tier"] == "platinum"
    assert after["M001"]["phone_status"] == "missing"  # the newer row replaces the whole member
    assert after["M002"] == first["M002"]


def test_mapped_columns_and_allowed_attributes_and_withdrawing_one(con, tmp_path, fixtures):
    columns = ColumnsConfig(
        crm={"member_id": "CustomerNumber", "email": "E-mail", "phone": "Mobile", "signup_date": "Joined",
             "tier": "Level"}
    )
    keeping = Config(project_dir=tmp_path, columns=columns,
                     privacy=PrivacyConfig(allowed_attributes=("postcode",)))
    path = fixtures / "crm" / "members_mapped.csv"
    result = ingest_source(con, "crm", path, config=keeping)
    assert result.rows_loaded == 2 and result.ignored_columns == []
    members = _rows(con, "stg_crm__members")
    assert {m: (r["tier"], r["postcode"], r["phone_pid"]) for m, r in members.items()} == {
        "C100": ("gold", "62701", _pid("+12025550150")),
        "C101": ("silver", "62702", _pid("+12025550151")),
    }
    # Withdrawing the attribute drops it from every row on the next load, not only the new ones.
    dropping = Config(project_dir=tmp_path, columns=columns)
    ingest_source(con, "crm", path, config=dropping)
    assert "postcode" not in con.table("stg_crm__members").columns
    assert sorted(_rows(con, "stg_crm__members")) == ["C100", "C101"]


def test_emails_and_phones_can_never_be_kept_as_plain_attributes(tmp_path):
    mapped = ColumnsConfig(crm={"email": "E-Mail"})
    config = Config(project_dir=tmp_path, columns=mapped,
                    privacy=PrivacyConfig(allowed_attributes=("e-mail", "favourite_colour", "Phone")))
    with pytest.raises(SpilloverConfigError, match=r"privacy\.allowed_attributes in spillover\.toml names "
                       r"e-mail, Phone; emails and phones are always pseudonymised"):
        members_spec(config, key=KEY)


def test_missing_crm_columns_are_named_together(tmp_path, config):
    path = tmp_path / "members.csv"
    path.write_text("email,phone\nzoe@example.com,+1 202 555 0100\n")
    with pytest.raises(SpilloverInputError, match=r"missing required column\(s\) member_id, signup_date; "
                       r"nothing was loaded.*\[columns\.crm\]"):
        check_file(members_spec(config, key=KEY), path, config=config)


def test_the_same_person_written_differently_is_one_exact_duplicate(tmp_path, config):
    path = tmp_path / "members.csv"
    path.write_text(
        "member_id,email,phone,signup_date\n"
        "M1,Zoe@Example.com,(202) 555-0100,2024-01-01\n"
        "M1, zoe@example.com ,+1 202 555 0100,2024-01-01\n"
    )
    checked = check_file(members_spec(config, key=KEY), path, config=config)
    assert (len(checked.rows), checked.duplicates, checked.quarantined) == (1, 1, [])
    assert checked.rows[0]["email_pid"] == _pid("zoe@example.com")


def test_parquet_members_are_read_and_their_quarantined_raw_text_is_redacted(tmp_path, config):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "members.parquet"
    pq.write_table(
        pa.table({
            "member_id": ["M1", "M2"],
            "email": ["yan@example.com", "zed@example.com"],
            "phone": [None, "+1 202 555 0166"],
            "last_name": ["Yu", "Zed"],
            "signup_date": [dt.date(2024, 1, 1), None],
            "consent_ads": [True, False],
        }),
        path,
    )
    checked = check_file(members_spec(config, key=KEY), path, config=config)
    assert [(r["member_id"], r["signup_date"], r["email_pid"], r["phone_status"], r["consent_ads"])
            for r in checked.rows] == [("M1", dt.date(2024, 1, 1), _pid("yan@example.com"), "missing", True)]
    (refused,) = checked.quarantined
    assert (refused.source_line, refused.column_name, refused.reason) == (2, "signup_date", "missing_required_value")
    assert refused.raw == (
        '{"member_id": "M2", "email": "<redacted:email>", "phone": "<redacted:phone>", '
        '"last_name": "<redacted:name>", "signup_date": null, "consent_ads": false}'
    )
