"""Unified social credit codes (统一社会信用代码, GB 32100-2015): 18 characters, checksummed."""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_char(first17: str) -> str:
    """The check character for the first 17 characters of a code."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def uscc_error(code: str) -> str | None:
    """``None`` if ``code`` is a valid unified social credit code, else why not."""
    if len(code) != 18:
        return f"credit code must be 18 characters, got {len(code)}"
    bad = sorted({c for c in code if c not in _VALUE})
    if bad:
        return f"credit code has characters outside the GB 32100 alphabet: {''.join(bad)!r}"
    if check_char(code[:17]) != code[17]:
        return f"credit code checksum fails (expected check character {check_char(code[:17])!r})"
    return None


def is_valid_uscc(code: str) -> bool:
    return uscc_error(code) is None
