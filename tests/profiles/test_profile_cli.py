"""``spillover profile``: a customer found by any identifier, raw emails and phones pseudonymised first."""

from __future__ import annotations

import csv
import hashlib
import json

from dataclasses import dataclass

import pytest

from spillover.cli import main
from spillover.config import Config
from spillover.engine import connect
from spillover.identity.graph import build_identity
from spillover.profiles.build import build_profiles
from tests.profiles.staged import ORDERS, write_shop

@dataclass
class Result:
    exit_code: int
    output: str
    error: str


@pytest.fixture
def profile(capsys):
    """Run `spillover profile ARGS` through the console entry point (so errors become exit codes)."""

    def run(*args: str) -> Result:
        with pytest.raises(SystemExit) as exited:
            main(["profile", *args])
        captured = capsys.readouterr()
        return Result(exited.value.code or 0, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def demo(demo_warehouse):
    with open(demo_warehouse["directory"] / "data" / "crm" / "members.csv", newline="") as handle:
        members = list(csv.DictReader(handle))
    return f"duckdb:///{demo_warehouse['database']}", members


def _card(result) -> dict:
    assert result.exit_code == 0, result.error
    return json.loads(result.output)


def test_a_member_id_shows_the_profile_identifiers_and_adoptions(demo, profile):
    db, _ = demo
    con = connect(db, read_only=True)
    adopter = con.sql(
        "select p.member_id, p.customer_key, a.product_id from fct_product_adoptions a "
        "join mart_customer_profile p using (customer_key) where p.member_id is not null order by 1 limit 1"
    ).to_pyarrow().to_pylist()[0]
    con.disconnect()
    card = _card(profile(adopter["member_id"], "--db", db, "--json"))
    assert card["customer_key"] == adopter["customer_key"]
    assert card["matched_as"] == ["member_id", "user_id"]
    assert card["profile"]["member_id"] == adopter["member_id"]
    assert {"id_type": "member_id", "id_value": adopter["member_id"]} in card["identifiers"]
    assert adopter["product_id"] in [a["product_id"] for a in card["adoptions"]]
    assert card["profile"]["adopted"][adopter["product_id"]] == card["adoptions"][0]["adopted_at"]


def test_a_raw_email_or_phone_is_pseudonymised_before_the_lookup(demo, profile):
    db, members = demo
    member = next(m for m in members if m["email"] and m["phone"])
    by_member = _card(profile(member["member_id"], "--db", db, "--json"))
    shouted = f"  {member['email'].upper()} "  # normalised as at ingest: trimmed, lower-case
    by_email = profile(shouted, "--db", db, "--json")
    assert _card(by_email)["customer_key"] == by_member["customer_key"]
    assert _card(by_email)["matched_as"] == ["email"]
    assert member["email"].lower() not in (by_email.output + by_email.error).lower()  # only pseudonyms
    digits = "".join(c for c in member["phone"] if c.isdigit())[-10:]
    by_phone = _card(profile(f"+1 {digits[:3]}.{digits[3:6]}.{digits[6:]}", "--db", db, "--json", "--id-type", "phone"))
    assert by_phone["customer_key"] == by_member["customer_key"]
    assert digits not in json.dumps(by_phone)


def test_a_browser_id_or_an_order_finds_its_customer(demo, profile):
    db, _ = demo
    con = connect(db, read_only=True)
    row = con.sql(
        "select e.user_pseudo_id, o.order_id, o.customer_key from ("
        "  select s.customer_key, min(s.client_key) client_key from fct_sessions s group by 1) c "
        "join (select distinct client_key, user_pseudo_id from stg_ga4__events) e using (client_key) "
        "join (select a.customer_key, min(a.order_id) order_id from fct_product_adoptions a group by 1) o using (customer_key) "
        "order by 3 limit 1"
    ).to_pyarrow().to_pylist()[0]
    con.disconnect()
    assert _card(profile(row["user_pseudo_id"], "--db", db, "--json"))["customer_key"] == row["customer_key"]
    assert _card(profile(row["order_id"], "--db", db, "--json", "--id-type", "order_id"))["customer_key"] == row["customer_key"]


def test_the_terminal_view_shows_the_profile_and_its_identifiers(demo, profile):
    db, members = demo
    result = profile(members[0]["member_id"], "--db", db)
    assert result.exit_code == 0, result.output
    assert "customer " in result.output and "identifiers (pseudonymised)" in result.output
    assert "tenure_days" in result.output and members[0]["member_id"] in result.output


def test_unknown_identifiers_exit_with_2_and_never_echo_an_email(demo, profile):
    db, _ = demo
    missing = profile("M99999999", "--db", db)
    assert missing.exit_code == 2
    assert missing.error.startswith("error: no customer found for 'M99999999' as any of customer_key, member_id")
    email = profile("nobody@example.com", "--db", db)
    assert email.exit_code == 2
    assert "no customer found for the identifier given" in email.error
    assert "nobody@example.com" not in email.error + email.output
    bad_type = profile("M1", "--db", db, "--id-type", "passport")
    assert bad_type.exit_code == 2
    assert "unknown --id-type 'passport'; use one of customer_key" in bad_type.error


@pytest.fixture
def colliding(tmp_path, monkeypatch):
    """The hand-written shop, plus an order numbered like a member id: 'M2' is M1's order and M2's id."""
    monkeypatch.chdir(tmp_path)
    con = connect("duckdb:///spillover.duckdb")
    write_shop(con, orders=[*ORDERS, ("M2", "M1", None, 6, "online", None)])
    config = Config(project_dir=tmp_path)
    build_identity(con, config)
    build_profiles(con, config)
    con.disconnect()


def test_an_ambiguous_identifier_asks_for_its_type(colliding, profile):
    ambiguous = profile("M2")
    assert ambiguous.exit_code == 2
    message = ambiguous.error
    assert "matches 2 customers" in message and "pass --id-type" in message
    m1 = hashlib.md5(b"member_id:M1").hexdigest()
    m2 = hashlib.md5(b"member_id:M2").hexdigest()
    assert _card(profile("M2", "--id-type", "order_id", "--json"))["customer_key"] == m1
    assert _card(profile("M2", "--id-type", "member_id", "--json"))["customer_key"] == m2
