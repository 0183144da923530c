"""Pseudonymisation: normalisation rules, stable keyed pseudonyms and activation hashes.

The expected digests were computed outside spillover (``openssl dgst -sha256 -hmac KEY`` and
``sha256sum``), so the tests check the published algorithm, not our own code against itself.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spillover.errors import SpilloverInputError
from spillover.privacy.pseudonymise import (
    keyed_pseudonym,
    normalise_email,
    normalise_phone,
    pseudonymise_email,
    pseudonymise_phone,
    redact_text,
    sha256_for_activation,
)

TEST_KEY = b"test-key-0123456789abcdef0123456789abcdef"  # the key tests/conftest.py sets

# openssl dgst -sha256 -hmac "$TEST_KEY" of the normalised value
ALICE_EMAIL_PID = "c61a9e3aa850578e33f0162d55d65cdd7c418d5bbfdd46cbe8bae1c96d769b94"
US_PHONE_PID = "61b0831462ce46c55f4136eccf2b0aeeadb4e773e8472e50c6bddf4e47615828"  # +12125550199
UK_PHONE_PID = "2a90652681509f054fdee3047de8c8235b51e2f7a56f9087a6eed6522c4c6395"  # +442079460958


def test_email_pid_matches_an_independently_computed_hmac():
    assert pseudonymise_email(" Alice.Smith@Example.com\t", TEST_KEY).pid == ALICE_EMAIL_PID
    assert keyed_pseudonym("alice.smith@example.com", TEST_KEY) == ALICE_EMAIL_PID


@pytest.mark.parametrize(
    ("written", "region", "pid"),
    [
        ("(212) 555-0199", "US", US_PHONE_PID),
        ("+1 212 555 0199", "GB", US_PHONE_PID),  # an explicit country code wins over the region
        ("212.555.0199", "us", US_PHONE_PID),
        ("020 7946 0958", "GB", UK_PHONE_PID),
        ("+44 20 7946 0958", "US", UK_PHONE_PID),
    ],
)
def test_phone_is_normalised_to_e164_before_the_hmac(written, region, pid):
    result = pseudonymise_phone(written, TEST_KEY, region)
    assert (result.pid, result.status) == (pid, "valid")


def test_normalisation_rules():
    assert normalise_email("  Bob@Example.COM ") == "bob@example.com"
    assert normalise_email("no-at-sign.example.com") is None
    assert normalise_email("two@@example.com") is None
    assert normalise_phone("(212) 555-0199", "US") == "+12125550199"
    assert normalise_phone("555-0100", "US") is None  # no area code: not a valid number


@pytest.mark.parametrize(
    ("email", "phone", "statuses"),
    [
        (None, None, ("missing", "missing")),
        ("  ", "", ("missing", "missing")),
        ("not-an-email", "12345", ("invalid", "invalid")),
        ("carol@example.com", "+1 202-555-0143", ("valid", "valid")),
    ],
)
def test_status_says_why_a_pid_is_missing(email, phone, statuses):
    email_result = pseudonymise_email(email, TEST_KEY)
    phone_result = pseudonymise_phone(phone, TEST_KEY, "US")
    assert (email_result.status, phone_result.status) == statuses
    assert (email_result.pid is None, phone_result.pid is None) == tuple(s != "valid" for s in statuses)


def test_another_key_gives_another_pseudonym():
    other = pseudonymise_email("alice.smith@example.com", b"another-key-of-sufficient-length-000000").pid
    assert other != ALICE_EMAIL_PID
    with pytest.raises(SpilloverInputError, match="project key is empty"):
        keyed_pseudonym("alice.smith@example.com", b"")


@given(
    local=st.from_regex(r"[a-z0-9._]{1,12}", fullmatch=True),
    domain=st.sampled_from(["example.com", "example.org", "mail.example.net"]),
    pad=st.sampled_from(["", " ", "\t", "  "]),
    upper=st.booleans(),
)
def test_email_pid_ignores_case_and_surrounding_space(local, domain, pad, upper):
    email = f"{local}@{domain}"
    written = pad + (email.upper() if upper else email) + pad
    expected = hmac.new(TEST_KEY, email.encode(), hashlib.sha256).hexdigest()
    assert pseudonymise_email(written, TEST_KEY).pid == expected


def test_activation_hashes_follow_each_destination():
    # sha256sum of the destination-normalised values
    assert sha256_for_activation(" Test@Example.com ", "email") == (
        "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    )
    assert sha256_for_activation("John.Doe@Gmail.com", "email", destination="google") == (
        "06a240d11cc201676da976f7b49341181fd180da37cbe40a77432c0a366c80c3"  # johndoe@gmail.com
    )
    assert sha256_for_activation("John.Doe@Gmail.com", "email", destination="meta") == (
        "375320dd9ae7ed408002f3768e16cb5f28c861062fd50dff9a3bff62e9dce4ef"  # john.doe@gmail.com
    )
    assert sha256_for_activation("(212) 555-0199", "phone", destination="google") == (
        "1c7f8f8ad3a6fc219020c4474a4b924f7edc69197f42ae2816d9a0a9e0cfe68f"  # +12125550199
    )
    assert sha256_for_activation("(212) 555-0199", "phone", destination="meta") == (
        "b220e5682592149df1f2233622bf380dbbdb495ed6a836271b4ea4e1f0b2c6e4"  # 12125550199
    )
    assert sha256_for_activation("555-0100", "phone") is None


def test_activation_rejects_unknown_kinds_and_destinations():
    with pytest.raises(SpilloverInputError, match="unknown identifier kind 'name'"):
        sha256_for_activation("Alice", "name")  # type: ignore[arg-type]
    with pytest.raises(SpilloverInputError, match="unknown activation destination 'tiktok'"):
        sha256_for_activation("a@example.com", "email", destination="tiktok")  # type: ignore[arg-type]


def test_redact_text_hides_emails_and_phones_but_keeps_dates_and_amounts():
    text = "M9,call kim@example.com or (212) 555-0199,2024-03-01T14:05:00Z,99.00,P100"
    assert redact_text(text) == "M9,call <redacted:email> or <redacted:phone>,2024-03-01T14:05:00Z,99.00,P100"
    assert redact_text("+44 20 7946 0958", "US") == "<redacted:phone>"
