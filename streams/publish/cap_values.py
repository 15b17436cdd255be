"""CAP 1.2 value rules: times (``+00:00``, whole seconds), identifiers and other tokens
(percent-encoded), and text XML 1.0 can carry; ``CapError`` when a value cannot be had."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote

from xsdata.models.datatype import XmlDateTime

from streams.core.errors import TocsinError

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# characters kept as they are in identifiers: printable ASCII except space , < & % " > \
_ID_SAFE = "!#$'()*+-./:;=?@[]^_`{|}~"


class CapError(TocsinError, ValueError):
    """A warning cannot be rendered as a valid CAP message (the message says why)."""


class CapDateTime(XmlDateTime):
    """``xs:dateTime`` in the CAP profile: UTC is written ``+00:00``, never ``Z``."""

    __slots__ = ()

    def __str__(self) -> str:
        text = XmlDateTime.__str__(self)
        return text[:-1] + "+00:00" if text.endswith("Z") else text


def cap_datetime(dt: datetime) -> CapDateTime:
    """A timezone-aware time as a CAP time, in UTC, truncated to whole seconds.

    >>> str(cap_datetime(datetime(2026, 11, 23, 10, 15, 0, 123456, tzinfo=UTC)))
    '2026-11-23T10:15:00+00:00'
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise CapError(f"time {dt.isoformat()} has no time zone: CAP needs an explicit offset")
    u = dt.astimezone(UTC)
    if not 1000 <= u.year <= 9999:
        raise CapError(f"time {u.isoformat()} is outside the years 1000-9999 CAP can express")
    return CapDateTime(u.year, u.month, u.day, u.hour, u.minute, u.second, 0, 0)


def cap_time_text(dt: datetime) -> str:
    """``cap_datetime`` as text, e.g. for comparing with a rendered alert."""
    return str(cap_datetime(dt))


def cap_identifier(warning_id: str, version: int) -> str:
    """The CAP identifier of one version of a warning: unique per (warning, version).

    >>> cap_identifier("tw-harbour-0a1b2c3d4e5f6789", 3)
    'tw-harbour-0a1b2c3d4e5f6789.v3'
    >>> cap_identifier("a b,c<&", 1)
    'a%20b%2Cc%3C%26.v1'
    """
    if not warning_id:
        raise CapError("the warning id is empty: a CAP identifier needs one")
    if version < 1:
        raise CapError(f"version {version} is not a warning version (they start at 1)")
    return f"{cap_token(warning_id)}.v{version}"


def whole_seconds(dt: datetime) -> datetime:
    """``dt`` in UTC without its fraction of a second."""
    return dt.astimezone(UTC).replace(microsecond=0)


def xml_text(text: str) -> str:
    """Text that XML 1.0 can carry: characters it forbids (control characters, lone
    surrogates, U+FFFE/U+FFFF) become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", text)


def cap_token(text: str) -> str:
    """Percent-encode what CAP forbids in identifiers, senders and incident ids."""
    return quote(text, safe=_ID_SAFE)


def check_token(what: str, text: str) -> None:
    """Refuse a sender (``what``) that would need percent-encoding."""
    if not text or cap_token(text) != text:
        raise CapError(
            f"{what} {text!r} is not a valid CAP {what}: use printable ASCII without spaces, "
            "',', '<', '&', '>', '\"', '\\' or '%', e.g. 'tocsin@alerts.example.gov'"
        )
