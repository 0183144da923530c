"""Probabilistic matching of CRM members registered twice, with Splink on an in-memory DuckDB.

Runs while a CRM file is ingested, on the raw names, email, phone and address of its rows, which
exist only in this process's memory: Splink gets a DuckDB of its own, in memory, whose spill folder
is removed afterwards, and only pairs of member ids with their match probability come out
(``stg_crm__member_matches``). The identity stage links the pairs at or above
``identity.fuzzy_match_threshold``. The model (Fellegi–Sunter, as Splink fits it) is trained on the
file itself: u-probabilities from random pairs, m-probabilities by expectation maximisation.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spillover.config import FUZZY_MATCH_FLOOR
from spillover.errors import SpilloverStageError

__all__ = ["MATCH_FLOOR", "MATCHES_SCHEMA", "member_features", "find_duplicate_members"]

#: Pairs below this probability are not kept; ``identity.fuzzy_match_threshold`` may not go lower.
MATCH_FLOOR = FUZZY_MATCH_FLOOR
#: Random pairs drawn to estimate how often non-matches agree by chance (u-probabilities).
U_SAMPLE_PAIRS = 200_000
#: Most pairs an EM session may score (about 15 CPU µs each); wider blocks are narrowed.
EM_PAIR_BUDGET = 200_000
#: Prior recall of "same first name, last name and postcode" among true duplicates (for λ).
EXACT_RULE_RECALL = 0.7

FEATURES = pa.schema([
    ("member_id", pa.string()),
    ("first_name", pa.string()),
    ("last_name", pa.string()),
    ("email", pa.string()),
    ("email_local", pa.string()),
    ("phone", pa.string()),
    ("address", pa.string()),
    ("street", pa.string()),
    ("postcode", pa.string()),
])
MATCHES_SCHEMA = pa.schema([
    ("member_id_l", pa.string()),
    ("member_id_r", pa.string()),
    ("match_probability", pa.float64()),
    ("match_weight", pa.float64()),
])

_NOT_LETTERS = re.compile(r"[^a-z]+")
_NOT_DIGITS = re.compile(r"\D+")
_HOUSE_NUMBER = re.compile(r"^\d+[a-z]?\s+")
_SPACES = re.compile(r"\s+")


def _lower(value: object) -> str | None:
    text = _SPACES.sub(" ", str(value)).strip().lower() if value is not None else ""
    return text or None


def member_features(parsed: dict[str, object]) -> dict[str, str | None]:
    """What Splink compares of one parsed CRM row, normalised: names as lower-case letters, the
    email lower-case and its user name, the phone's last ten digits, the address and its street
    (without the house number), the postcode. Raw values: kept in memory only."""
    email = _lower(parsed.get("email"))
    address = _lower(parsed.get("address"))
    digits = _NOT_DIGITS.sub("", str(parsed.get("phone") or ""))[-10:]

    def name(column: str) -> str | None:
        return _NOT_LETTERS.sub("", _lower(parsed.get(column)) or "") or None

    return {
        "member_id": str(parsed["member_id"]),
        "first_name": name("first_name"),
        "last_name": name("last_name"),
        "email": email,
        "email_local": email.partition("@")[0] or None if email else None,
        "phone": digits or None,
        "address": address,
        "street": _HOUSE_NUMBER.sub("", address) or None if address else None,
        "postcode": _lower(parsed.get("postcode")),
    }


def prior_match_probability(features: pa.Table) -> float:
    """λ, the probability that two random members are the same person: the pairs that agree exactly
    on first name, last name and postcode, divided by that rule's assumed recall, over all pairs.

    At least one expected pair, so that a file without such pairs still gets a usable (small) prior;
    at most even odds, which only a file of a handful of members reaches.
    """
    agreeing = _pairs_agreeing(features, ["first_name", "last_name", "postcode"])
    pairs = features.num_rows * (features.num_rows - 1) / 2
    return min(max(agreeing / EXACT_RULE_RECALL, 1.0) / pairs, 0.5)


def _training_blocks(features: pa.Table) -> list[list[str]]:
    """The blocks EM learns on; each session learns the fields its block leaves free.

    Blocked on postcode: every field but the postcode (on a large file, where a postcode holds
    thousands of members, blocked on first name and postcode instead, which leaves the first name
    to the other session). Blocked on the email's user name: the names, phone, address and postcode.
    A block without pairs teaches nothing and is skipped (Splink's default m-probabilities stay).
    """
    wide = ["postcode"] if _pairs_agreeing(features, ["postcode"]) <= EM_PAIR_BUDGET else ["first_name", "postcode"]
    return [columns for columns in (wide, ["email_local"]) if _pairs_agreeing(features, columns)]


def _pairs_agreeing(features: pa.Table, keys: list[str]) -> int:
    """How many pairs of members agree exactly on every one of ``keys`` (none of them missing)."""
    present = features.select(keys).drop_null()
    counts = present.group_by(keys).aggregate([([], "count_all")]).column("count_all").to_numpy()
    return int((counts * (counts - 1) // 2).sum())


def _settings(prior: float) -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        probability_two_random_records_match=prior,
        unique_id_column_name="member_id",
        comparisons=[
            # Common names agree by chance more often: term-frequency adjusted.
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.CustomComparison(
                [
                    cll.NullLevel("email"),
                    cll.ExactMatchLevel("email"),
                    cll.ExactMatchLevel("email_local").configure(label_for_charts="same user name, other domain"),
                    cll.DamerauLevenshteinLevel("email_local", 1).configure(label_for_charts="one slip in the user name"),
                    cll.ElseLevel(),
                ],
                output_column_name="email",
            ),
            cl.ExactMatch("phone"),
            cl.CustomComparison(
                [
                    cll.NullLevel("address"),
                    cll.ExactMatchLevel("address"),
                    cll.ExactMatchLevel("street").configure(label_for_charts="same street, other number"),
                    cll.ElseLevel(),
                ],
                output_column_name="address",
            ),
            cl.ExactMatch("postcode"),
        ],
        # A typo hits one field at a time, so every duplicate agrees exactly on one of these.
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "postcode"),
            block_on("last_name", "postcode"),
            block_on("email_local"),
            block_on("phone"),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def find_duplicate_members(features: pa.Table, *, floor: float = MATCH_FLOOR) -> pa.Table:
    """Pairs of members (``member_id_l < member_id_r``) that Splink scores at ``floor`` or above.

    ``features`` holds one row per member, as :func:`member_features` makes them (``FEATURES``).
    Returns a table of ``MATCHES_SCHEMA``: member ids and scores, nothing of the features.
    """
    empty = MATCHES_SCHEMA.empty_table()
    if features.num_rows < 2:
        return empty
    import duckdb
    from splink import DuckDBAPI, Linker, block_on

    spill = tempfile.mkdtemp(prefix="spillover-splink-")
    connection = duckdb.connect(":memory:", config={"temp_directory": spill})
    splink_logger = logging.getLogger("splink")
    level = splink_logger.level
    # Splink warns at length about levels a small file never shows; the defaults it uses are fine.
    splink_logger.setLevel(logging.ERROR)
    step = "training"
    try:
        settings = _settings(prior_match_probability(features))
        linker = Linker(DuckDBAPI(connection).register(features.cast(FEATURES)), settings, log_level=logging.ERROR)
        linker.training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=1)
        for columns in _training_blocks(features):
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(*columns))
        step = "prediction"
        scored = linker.inference.predict(threshold_match_probability=floor).as_pyarrow_table()
    except Exception as exc:
        raise SpilloverStageError(
            "ingest", f"CRM fuzzy matching ({step})",
            f"Splink failed: {exc}; set identity.fuzzy_matching = false in spillover.toml to load without it",
        ) from exc
    finally:
        splink_logger.setLevel(level)
        connection.close()
        shutil.rmtree(spill, ignore_errors=True)
    if scored.num_rows == 0:
        return empty
    left, right = scored.column("member_id_l"), scored.column("member_id_r")
    swap = pc.greater(left, right)
    return pa.table(
        {
            "member_id_l": pc.if_else(swap, right, left),
            "member_id_r": pc.if_else(swap, left, right),
            "match_probability": scored.column("match_probability").cast(pa.float64()),
            "match_weight": scored.column("match_weight").cast(pa.float64()),
        },
        schema=MATCHES_SCHEMA,
    )
