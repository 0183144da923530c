"""Who people are on paper: names, emails, phones, addresses and CRM records, rendered as text.

All values are synthetic. About 2% of people registered twice; their second record has typos in the
name or email, and the phone written differently or left out — the mess identity resolution must undo.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spillover.synth import text
from spillover.synth.people import (
    CITIES,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    STREET_SUFFIXES,
    STREETS,
    Population,
)

TIERS = ("bronze", "silver", "gold", "platinum")
TIER_QUANTILES = (0.5, 0.8, 0.95)
MESSY_EMAIL_SHARE = 0.03  # primary CRM emails typed with capitals


def person_ids(people: np.ndarray) -> pa.Array:
    return text.fixed_digits(people, 7, prefix="person_")


def member_ids(numbers: np.ndarray) -> pa.Array:
    """``M`` and eight digits; null where the number is negative (no member)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    return text.fixed_digits(np.maximum(numbers, 0), 8, prefix="M", null_mask=numbers < 0)


def emails(pop: Population, people: np.ndarray) -> pa.Array:
    """Each person's own (canonical, lower-case) email address."""
    n = len(people)
    first = pc.utf8_lower(text.pick(FIRST_NAMES, pop.first_name[people]))
    last = pc.utf8_lower(text.pick(LAST_NAMES, pop.last_name[people]))
    initial = pc.utf8_slice_codeunits(first, 0, 1)
    style = pop.email_style[people]
    separator = text.pick((".", "", ".", "_"), style)
    given = pc.if_else(pa.array(style == 2), initial, first)
    number = text.integers(pop.email_number[people])
    domain = text.pick(EMAIL_DOMAINS, pop.email_domain[people])
    return text.join([given, separator, last, number, "@", domain], n)


def phones(pop: Population, people: np.ndarray) -> pa.Array:
    """Phone numbers in the format each person writes them; null when none was given."""
    n = len(people)
    area = text.integers(pop.phone_area[people])
    line = pc.utf8_lpad(text.integers(pop.phone_line[people]), width=4, padding="0")
    style = pop.phone_style[people]
    formats = [
        ["(", area, ") 555-", line],
        [area, "-555-", line],
        ["+1 ", area, " 555 ", line],
        [area, "555", line],
        [area, ".555.", line],
    ]
    rendered = [text.join(f, n) for f in formats]
    out = rendered[0]
    for k in range(1, len(formats)):
        out = pc.if_else(pa.array(style == k), rendered[k], out)
    return text.null_where(out, style >= len(formats))


def tiers(pop: Population) -> np.ndarray:
    """Loyalty tier from the (latent) spending level, seen through noise."""
    score = np.log(pop.order_rate * (1.0 + pop.extra_lines)) + pop.tier_noise
    cuts = np.quantile(score, TIER_QUANTILES)
    return np.searchsorted(cuts, score)


def _typo(word: str, rng: np.random.Generator) -> str:
    """One keyboard slip: swap two neighbours, drop, double or replace a letter (never a no-op)."""
    if len(word) < 3:
        return word + word[-1]
    slipped = _slip(word, rng)
    return slipped if slipped != word else word[:-1] + word[-1] * 2


def _slip(word: str, rng: np.random.Generator) -> str:
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(4))
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    vowels = "aeiou"
    replacement = vowels[(vowels.find(word[i].lower()) + 1) % 5] if word[i].lower() in vowels else "e"
    return word[:i] + replacement + word[i + 1:]


def crm_members(pop: Population, member_number: np.ndarray, member_since: np.ndarray,
                secondary_number: np.ndarray, secondary_day: np.ndarray, last_day: int,
                start: dt.date, rng: np.random.Generator) -> dict[str, object]:
    """The CRM snapshot at the end of the period: one row per registration (sorted by member_id).

    Returns the columns as Arrow arrays plus ``person`` (the truth behind every row).
    """
    primary = np.flatnonzero((member_number >= 0) & (member_since <= last_day))
    secondary = np.flatnonzero((secondary_number >= 0) & (secondary_day <= last_day))
    people = np.concatenate([primary, secondary])
    numbers = np.concatenate([member_number[primary], secondary_number[secondary]])
    days = np.concatenate([member_since[primary], secondary_day[secondary]])
    is_second = np.concatenate([np.zeros(len(primary), bool), np.ones(len(secondary), bool)])
    order = np.argsort(numbers, kind="stable")
    people, numbers, days, is_second = people[order], numbers[order], days[order], is_second[order]
    n = len(people)

    first = text.pick(FIRST_NAMES, pop.first_name[people]).to_pylist()
    last = text.pick(LAST_NAMES, pop.last_name[people]).to_pylist()
    email = emails(pop, people).to_pylist()
    phone = phones(pop, people).to_pylist()
    house = pop.house_number[people].copy()
    messy = rng.random(n) < MESSY_EMAIL_SHARE
    for row in np.flatnonzero(messy & ~is_second):
        local, domain = email[row].split("@")
        email[row] = local[:1].upper() + local[1:] + "@" + domain[:1].upper() + domain[1:]
    for row in np.flatnonzero(is_second):
        slip = rng.random(4)
        if slip[0] < 0.5:
            first[row] = _typo(first[row], rng)
        elif slip[0] < 0.8:
            last[row] = _typo(last[row], rng)
        local, domain = email[row].split("@")
        if slip[1] < 0.8:
            email[row] = _typo(local, rng) + "@" + domain
        else:
            email[row] = local + "@" + EMAIL_DOMAINS[(EMAIL_DOMAINS.index(domain) + 1) % len(EMAIL_DOMAINS)]
        if phone[row] is not None:
            if slip[2] < 0.4:
                phone[row] = None
            else:
                digits = "".join(ch for ch in phone[row] if ch.isdigit())[-10:]
                phone[row] = f"{digits[:3]}-{digits[3:6]}-{digits[6:]}" if slip[2] < 0.7 else f"1{digits}"
        if slip[3] < 0.3:
            house[row] = house[row] + 1 + int(rng.integers(0, 20))

    city = pop.city[people]
    address = text.join(
        [text.integers(house), " ", text.pick(STREETS, pop.street[people]), " ",
         text.pick(STREET_SUFFIXES, pop.street_suffix[people])], n)
    postcode = text.join(
        [text.pick([c[3] for c in CITIES], city),
         pc.utf8_lpad(text.integers(pop.postcode_suffix[people]), width=2, padding="0")], n)
    tier = tiers(pop)[people]
    return {
        "person": people,
        "member_number": numbers,
        "columns": {
            "member_id": member_ids(numbers),
            "email": pa.array(email, pa.string()),
            "phone": pa.array(phone, pa.string()),
            "first_name": pa.array(first, pa.string()),
            "last_name": pa.array(last, pa.string()),
            "address": address,
            "postcode": postcode,
            "signup_date": pa.array(np.datetime_as_string(
                np.datetime64(start, "D") + days.astype("timedelta64[D]"), unit="D")),
            "tier": text.pick(TIERS, tier),
            "region": text.pick([c[1] for c in CITIES], city),
            "consent_analytics": text.pick(("false", "true"), pop.consent_analytics[people].astype(int)),
            "consent_ads": text.pick(("false", "true"), pop.consent_ads[people].astype(int)),
        },
    }
