"""Personal data in citizen complaints: masking of free text and pseudonyms for identifiers.

``mask_text`` replaces phone numbers, Chinese resident ID numbers, e-mail addresses and bank
card numbers by typed placeholders (``[PHONE]``, ``[ID]``, ``[EMAIL]``, ``[CARD]``).
The recognisers follow Microsoft presidio's pattern recognisers (a regex proposes a
candidate, a checksum or parser validates it), but presidio itself is not used: it pulls in
spaCy and a language model, far too heavy for one stream stage. Phone numbers are found with
Google's libphonenumber port (``phonenumbers``).

``Pseudonymizer`` turns an identifier (a reporter's phone number) into a keyed HMAC-SHA256
pseudonym, so complaints from the same reporter can still be linked without the number
itself leaving ingest.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers

# --- validators -------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_char(body17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits of a resident ID.

    >>> id_check_char("11010519491231002")
    'X'
    """
    return _ID_CHECK[sum(int(c) * w for c, w in zip(body17, _ID_WEIGHTS, strict=True)) % 11]


def is_valid_resident_id(s: str) -> bool:
    """18-character PRC resident ID (17 digits and a check character 0-9 or X; full-width
    and other Unicode decimal digits count as digits)."""
    s = _ascii_digits(s).upper()
    return (len(s) == 18 and s[:17].isascii() and s[:17].isdigit()
            and s[17] in "0123456789X" and id_check_char(s[:17]) == s[17])


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check of a string of ASCII digits.

    >>> luhn_ok("4111111111111111"), luhn_ok("4111111111111112")
    (True, False)
    """
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _ascii_digits(s: str) -> str:
    """Unicode decimal digits (e.g. full-width "１３８") as ASCII, other characters kept."""
    return "".join(str(int(c)) if c.isdecimal() else c for c in s)


def _digits(s: str) -> str:
    return "".join(str(int(c)) for c in s if c.isdecimal())


def _is_card(s: str) -> bool:
    d = _digits(s)
    return 13 <= len(d) <= 19 and luhn_ok(d)


def _is_cn_phone(s: str) -> bool:
    try:
        n = phonenumbers.parse(_ascii_digits(s), "CN")
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(n))


# --- recognisers ------------------------------------------------------------------------

_SEP = re.compile(r"[ -]")


@dataclass(frozen=True, slots=True)
class Recognizer:
    """A regex proposes candidates, ``validator`` accepts or rejects them.

    A candidate made of groups (digits separated by single spaces or dashes) that fails
    validation is retried on its runs of whole groups, longest first, so a card number
    written next to an unrelated number ("qty 2 4111 1111 1111 1111") is still found."""

    name: str
    regex: re.Pattern[str]
    validator: Callable[[str], bool]
    placeholder: str

    def spans(self, text: str) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        pos = 0
        while (m := self.regex.search(text, pos)) is not None:
            span = self._accept(text, m.start(), m.end())
            if span is not None:
                out.append(span)
                pos = span[1]
            else:
                pos = m.start() + 1
        return out

    def _accept(self, text: str, start: int, end: int) -> tuple[int, int] | None:
        if self.validator(text[start:end]):
            return start, end
        # group boundaries inside the candidate
        starts = [start] + [m.end() + start for m in _SEP.finditer(text[start:end])]
        ends = [m.start() + start for m in _SEP.finditer(text[start:end])] + [end]
        if len(starts) == 1:
            return None
        cands = [(s, e) for s in starts for e in ends if e > s and (s, e) != (start, end)]
        cands.sort(key=lambda se: (se[0] - se[1], se[0]))  # longest first, then leftmost
        for s, e in cands:
            if self.validator(text[s:e]):
                return s, e
        return None


EMAIL = Recognizer(
    "email",
    re.compile(r"(?<![A-Za-z0-9._%+'-])[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
               r"\.[A-Za-z]{2,}"),
    lambda s: True, "[EMAIL]",
)
RESIDENT_ID = Recognizer(
    "resident_id", re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"), is_valid_resident_id, "[ID]",
)
CARD = Recognizer(
    "bank_card",
    # unseparated, 4-4-4-4[-1..4] (19-digit UnionPay cards) or 4-6-5 (American Express)
    re.compile(r"(?<!\d)(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,4})?"
               r"|\d{4}[ -]\d{6}[ -]\d{4,5})(?!\d)"),
    _is_card, "[CARD]",
)
# Chinese mobile numbers glued to Latin letters ("tel13800138000"), which the phone matcher
# skips as being part of a word.
CN_MOBILE = Recognizer(
    "cn_mobile", re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)"),
    _is_cn_phone, "[PHONE]",
)

# Order matters: e-mail addresses first (a numeric QQ address is one e-mail, not an ID), IDs
# and cards before phones, so an 18-digit ID is not partly masked as a phone number.
RECOGNIZERS: tuple[Recognizer, ...] = (EMAIL, RESIDENT_ID, CARD, CN_MOBILE)
PHONE_PLACEHOLDER = "[PHONE]"


def _replace(text: str, spans: list[tuple[int, int]], placeholder: str) -> str:
    if not spans:
        return text
    parts = []
    last = 0
    for s, e in spans:
        parts.append(text[last:s])
        parts.append(placeholder)
        last = e
    parts.append(text[last:])
    return "".join(parts)


def _mask_once(text: str, region_hint: str) -> str:
    for rec in RECOGNIZERS:
        text = _replace(text, rec.spans(text), rec.placeholder)
    phones = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, region_hint)]
    return _replace(text, phones, PHONE_PLACEHOLDER)


def _n_sensitive(text: str) -> int:
    return sum(1 for c in text if c == "@" or c.isdigit())


def mask_text(text: str, region_hint: str = "CN") -> str:
    """``text`` with personal data replaced by typed placeholders.

    Numbers failing their checks (prices, dates, counts, IDs with a wrong check digit) are
    left alone. Applied until nothing more changes (each change removes digits or an ``@``),
    so masking is idempotent: ``mask_text(mask_text(x)) == mask_text(x)``.

    >>> mask_text("call 138-0013-8000 or mail a.b@example.cn, 3 people ill")
    'call [PHONE] or mail [EMAIL], 3 people ill'
    """
    while True:
        masked = _mask_once(text, region_hint)
        if masked == text or _n_sensitive(masked) >= _n_sensitive(text):
            return masked
        text = masked


# --- pseudonyms -------------------------------------------------------------------------


def normalise_phone(value: str, region_hint: str = "CN") -> str:
    """E.164 form of a phone number ("138 0013 8000" -> "+8613800138000"); a value that
    does not parse is returned stripped of whitespace."""
    try:
        n = phonenumbers.parse(value, region_hint)
    except phonenumbers.NumberParseException:
        return "".join(value.split())
    return str(phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164))


class Pseudonymizer:
    """Keyed, deterministic pseudonyms: ``kind:`` + the first 20 hex digits of
    HMAC-SHA256(key, normalised value). The key is never logged or shown."""

    __slots__ = ("__key",)

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the pseudonym key must not be empty")
        self.__key = bytes(key)

    def pseudonym(self, value: str, kind: str = "phone") -> str:
        norm = normalise_phone(value) if kind == "phone" else value.strip()
        digest = hmac.new(self.__key, norm.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{kind}:{digest[:20]}"

    def __repr__(self) -> str:
        return "Pseudonymizer(key=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Pseudonymizer holds a secret key and is not picklable")
