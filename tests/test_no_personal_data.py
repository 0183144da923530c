"""No email address or phone number reaches the engine or any table, bad rows included.

Every fixture we own is loaded (and GA4's, once its ingest exists); then every string in every
table, ``ops_quarantine`` and ``ops_loads`` included, is scanned. The fixtures are full of synthetic
emails and phones, in good and bad rows, so a leak anywhere fails this test.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path


from spillover.config import Config
from spillover.ingest import tabular
from spillover.ingest.tabular import ingest_source

# Deliberately independent of spillover's own detectors (privacy.pseudonymise), and looser.
EMAIL = re.compile(r"[^\s@<>,;:\"'()]+@[^\s@<>,;:\"'()]+\.[A-Za-z]{2,}")
PHONE = re.compile(
    r"\+\d[\d\s().-]{6,}\d"  # international: +1 202-555-0143, +44 20 7946 0958
    r"|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b"  # North American: (212) 555-0199, 212.555.0199
    r"|\b\d{3}-\d{4}\b"  # local: 555-0100
    r"|\b0\d{2,4}\s\d{3,4}\s?\d{3,4}\b"  # UK national: 020 7946 0958
)


def _fixture_phone_digits(fixtures: Path) -> set[str]:
    """Digits of every phone written in our fixtures, to catch one however it was reformatted."""
    digits = set()
    for path in [*fixtures.glob("crm/*.csv"), *fixtures.glob("shop/*.csv")]:
        for found in PHONE.findall(path.read_text()):
            number = re.sub(r"\D", "", found)
            digits.add(number[-7:])  # the subscriber part survives any reformatting
    return digits


def _personal_data(text: str, phone_digits: set[str]) -> list[str]:
    found = EMAIL.findall(text) + PHONE.findall(text)
    only_digits = re.sub(r"\D", "", text)
    found += [d for d in phone_digits if d in only_digits and not re.fullmatch(r"[0-9a-f]{64}", text)]
    return found


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _load_everything(con, tmp_path: Path, fixtures: Path) -> None:
    config = Config(project_dir=tmp_path)
    ingest_source(con, "crm", fixtures / "crm" / "members.csv", config=config)
    for source in ("products", "orders", "order_items"):
        ingest_source(con, source, fixtures / "shop" / f"{source}.csv", config=config)
    if (fixtures / "ga4").is_dir() and importlib.util.find_spec("spillover.ingest.ga4") is not None:
        from spillover.ingest.ga4 import ingest_ga4

        ingest_ga4(con, [fixtures / "ga4"], config=config)


def test_the_detector_sees_the_identifiers_the_fixtures_hold(fixtures):
    # Without this, a detector that finds nothing would make the next test pass vacuously.
    text = "\n".join(p.read_text() for p in [*fixtures.glob("crm/*.csv"), *fixtures.glob("shop/*.csv")])
    assert len(set(EMAIL.findall(text))) >= 12
    assert len(_fixture_phone_digits(fixtures)) >= 10
    for leak in ["zoe@example.com", "(212) 555-0199", "+44 20 7946 0958", "call 555-0100", "x 2025550143"]:
        assert _personal_data(leak, _fixture_phone_digits(fixtures) | {"5550143"}), leak
    for harmless in ["2024-03-01T14:05:00Z", "99.0000", "O1007,1,P100,0,99.00,0", "<redacted:email>",
                     "c61a9e3aa850578e33f0162d55d65cdd7c418d5bbfdd46cbe8bae1c96d769b94"]:
        assert not _personal_data(harmless, _fixture_phone_digits(fixtures)), harmless


def test_no_table_holds_an_email_or_a_phone_after_loading_every_fixture(con, tmp_path, fixtures, monkeypatch):
    # Every row a tabular load hands to the engine is built by tabular._to_arrow.
    uploaded = []
    real_to_arrow = tabular._to_arrow

    def recording_to_arrow(*args, **kwargs):
        table = real_to_arrow(*args, **kwargs)
        uploaded.append(table.to_pylist())
        return table

    monkeypatch.setattr(tabular, "_to_arrow", recording_to_arrow)
    _load_everything(con, tmp_path, fixtures)
    phone_digits = _fixture_phone_digits(fixtures)

    # Identifiers are pseudonymised before any row reaches the engine, even a temporary table.
    assert len(uploaded) == 4
    leaks = [(i, s, found) for i, rows in enumerate(uploaded) for s in _strings(rows)
             if (found := _personal_data(s, phone_digits))]
    assert leaks == []

    tables = [name for name in con.list_tables() if not name.startswith("_spillover_")]
    assert {"stg_crm__members", "stg_shop__orders", "ops_quarantine", "ops_loads"} <= set(tables)
    scanned = 0
    for name in tables:
        for row in con.table(name).to_pyarrow().to_pylist():
            for text in _strings(row):
                scanned += 1
                found = _personal_data(text, phone_digits)
                assert not found, f"{name} holds {found!r} in {text!r}"
    ours = con.table("ops_quarantine").filter(lambda t: t.source.isin(["crm", "products", "orders", "order_items"]))
    assert ours.count().execute() == 19  # the bad rows, with their raw text, were scanned too
    assert scanned > 200
