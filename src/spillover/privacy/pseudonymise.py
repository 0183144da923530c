"""Pseudonymisation at the door: normalise emails and phones, replace them by keyed pseudonyms.

Direct identifiers never reach the engine: ingest calls these functions in Python and keeps only the
HMAC-SHA256 pseudonym (``*_pid``, hex). Activation exports use the unkeyed, destination-normalised
SHA-256 of :func:`sha256_for_activation` instead, because ad platforms match on that.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import phonenumbers

from spillover.errors import SpilloverInputError

if TYPE_CHECKING:
    import ibis

__all__ = [
    "IdentifierStatus",
    "Pseudonym",
    "normalise_email",
    "normalise_phone",
    "keyed_pseudonym",
    "pseudonymise_email",
    "pseudonymise_phone",
    "sha256_for_activation",
    "find_emails",
    "find_phones",
    "redact_text",
    "redact_emails_in",
]

IdentifierStatus = Literal["valid", "invalid", "missing"]

# Deliberately simple: one "@", something on each side, a dot in the domain, no spaces. Anything
# stricter rejects real addresses; anything looser lets obvious typos through as identities.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: An email address inside free text or a URL, "@" written plainly or URL-encoded as "%40". The
#: syntax is common to Python, RE2 (DuckDB) and Java (Spark), so engines redact exactly as Python does.
EMAIL_IN_TEXT_PATTERN = r"[\w.+'-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+"
EMAIL_MARKER = "<redacted:email>"
_EMAIL_IN_TEXT = re.compile(EMAIL_IN_TEXT_PATTERN)
_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
_DIGIT_RUN = re.compile(r"\d(?:[\s().+/-]*\d){5,}")  # six or more digits, maybe punctuated


@dataclass(frozen=True)
class Pseudonym:
    """The keyed pseudonym of one identifier (``None`` unless valid) and whether it was valid."""

    pid: str | None
    status: IdentifierStatus


def normalise_email(value: str | None) -> str | None:
    """Trim and lowercase an email address; ``None`` when empty or not shaped like an address."""
    if value is None:
        return None
    email = value.strip().lower()
    if not email or _EMAIL.fullmatch(email) is None:
        return None
    return email


def normalise_phone(value: str | None, default_region: str = "US") -> str | None:
    """A phone number in E.164 (``+12025550143``); ``None`` when empty or not a valid number.

    Numbers written without a country code are read in ``default_region`` (ISO 3166 alpha-2).
    """
    if value is None or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value, default_region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def keyed_pseudonym(normalised: str, key: bytes) -> str:
    """HMAC-SHA256 of an already normalised identifier under the project key, as lowercase hex.

    Stable by design: the same key and the same normalised value always give the same pseudonym, so
    pseudonyms join across sources and loads; without the key they cannot be reversed by guessing.
    """
    if not key:
        raise SpilloverInputError("the project key is empty; run `spillover init` or set $SPILLOVER_KEY")
    return hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()


def _status(value: str | None, normalised: str | None) -> IdentifierStatus:
    if normalised is not None:
        return "valid"
    return "missing" if value is None or not value.strip() else "invalid"


def pseudonymise_email(value: str | None, key: bytes) -> Pseudonym:
    """Normalise and pseudonymise an email; an unusable address gives ``pid=None``, status 'invalid'."""
    normalised = normalise_email(value)
    pid = keyed_pseudonym(normalised, key) if normalised is not None else None
    return Pseudonym(pid, _status(value, normalised))


def pseudonymise_phone(value: str | None, key: bytes, default_region: str = "US") -> Pseudonym:
    """Normalise a phone to E.164 and pseudonymise it; an unparseable one gives ``pid=None``, 'invalid'."""
    normalised = normalise_phone(value, default_region)
    pid = keyed_pseudonym(normalised, key) if normalised is not None else None
    return Pseudonym(pid, _status(value, normalised))


def sha256_for_activation(
    value: str | None,
    kind: Literal["email", "phone"],
    *,
    destination: Literal["google", "meta"] = "google",
    default_region: str = "US",
) -> str | None:
    """Unkeyed SHA-256 (hex) of an identifier normalised the way an ad platform expects it.

    Google Customer Match: emails trimmed and lowercased, dots removed from the local part of
    gmail.com/googlemail.com addresses; phones in E.164 with the leading ``+``.
    Meta custom audiences: emails trimmed and lowercased; phones as digits with the country code and
    no ``+``. Returns ``None`` for a missing or invalid value (nothing to match on).
    Only audience exports may use this: an unkeyed hash of an email can be reversed by guessing.
    """
    if destination not in ("google", "meta"):
        raise SpilloverInputError(f"unknown activation destination {destination!r}; use 'google' or 'meta'")
    if kind == "email":
        normalised = normalise_email(value)
        if normalised is not None and destination == "google":
            local, _, domain = normalised.partition("@")
            if domain in _GMAIL_DOMAINS:
                normalised = f"{local.replace('.', '')}@{domain}"
    elif kind == "phone":
        normalised = normalise_phone(value, default_region)
        if normalised is not None and destination == "meta":
            normalised = normalised.lstrip("+")
    else:
        raise SpilloverInputError(f"unknown identifier kind {kind!r} for activation; use 'email' or 'phone'")
    if normalised is None:
        return None
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def find_emails(text: str) -> list[str]:
    """Substrings of ``text`` that look like email addresses."""
    return _EMAIL_IN_TEXT.findall(text)


def find_phones(text: str, default_region: str = "US") -> list[str]:
    """Substrings of ``text`` that are valid phone numbers (as the ``phonenumbers`` matcher finds them)."""
    if _DIGIT_RUN.search(text) is None:
        return []  # too few digits for any phone number; skip the (slow) matcher
    matcher = phonenumbers.PhoneNumberMatcher(text, default_region.upper(), leniency=phonenumbers.Leniency.VALID)
    return [match.raw_string for match in matcher]


def redact_text(text: str, default_region: str = "US") -> str:
    """``text`` with anything that looks like an email or a phone number replaced by a marker.

    A last line of defence for free text that must be stored (quarantined raw rows, messages), where
    an identifier may sit in an unexpected place.
    """
    text = _EMAIL_IN_TEXT.sub(EMAIL_MARKER, text)
    for found in find_phones(text, default_region):
        text = text.replace(found, "<redacted:phone>")
    return text


def redact_emails_in(text: ibis.StringValue) -> ibis.StringValue:
    """An engine-side :func:`redact_text` for email addresses, as an Ibis expression.

    For text an export may carry emails in, such as GA4 page URLs with ``?email=...`` query strings
    (GA4 forbids it, sites do it anyway). The regular expression only runs on text with an "@" or
    "%40" in it, so clean rows cost a substring search.
    """
    import ibis

    suspicious = text.contains("@") | text.contains("%40")
    return ibis.ifelse(suspicious, text.re_replace(EMAIL_IN_TEXT_PATTERN, EMAIL_MARKER), text)
