"""Personal data in a text: emails, phone numbers, payment card numbers, national ids.

`find_pii(text, allowed)` lists each item with its kind and offsets, skipping the items in
`allowed` (the personal data of the CRM record being discussed, which the rep may see).
Comparison is normalised: emails case-insensitively, phone numbers by their last 10 digits, card
and id numbers by their digits.

- card: 13-19 digits, optionally grouped by spaces or dashes, passing the Luhn checksum (ISO/IEC
  7812-1); digit runs that fail Luhn are order numbers or figures, not cards;
- US SSN: AAA-GG-SSSS with the SSA's never-issued ranges excluded (area 000, 666, 900-999; group
  00; serial 0000), or 9 digits right after "SSN"/"social security";
- UK National Insurance number: two letters, six digits, a letter A-D (HMRC format);
- phone: NANP "(415) 555-0100" / "415-555-0100" / "+1 415 555 0100" and international
  "+44 20 7946 0958" (a "+", 8-15 digits).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
SSN_KEYWORD = re.compile(r"(?i)\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)\s*[:#]?\s*(\d{9})\b")
NINO = re.compile(r"\b(?![DFIQUV])[A-Z](?![DFIOQUV])[A-Z]\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b")
PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){2,4}"  # international
    r"|(?:\+?1[\s.-]?)?\(\d{3}\)\s?\d{3}[\s.-]\d{4}"  # (415) 555-0100
    r"|(?:\+?1[\s.-])?\d{3}[\s.-]\d{3}[\s.-]\d{4}"  # 415-555-0100
    r")(?!\d)"
)

LABELS = {"email": "email", "phone": "phone number", "card": "card number", "national_id": "national id"}


@dataclass(frozen=True, slots=True)
class PiiItem:
    """One item of personal data found in a text."""

    kind: str  # "email" | "phone" | "card" | "national_id"
    text: str
    start: int
    end: int


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum (ISO/IEC 7812-1) of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def normalise(kind: str, value: str) -> str:
    """The comparison key of an item: lower-cased email, last 10 phone digits, bare digits."""
    if kind == "email":
        return value.strip().lower()
    if kind == "phone":
        return _digits(value)[-10:]
    if kind == "national_id":
        return re.sub(r"[\s-]", "", value).upper()
    return _digits(value)


def _allowed_keys(allowed: Iterable[str]) -> set[str]:
    keys: set[str] = set()
    for a in allowed:
        a = str(a).strip()
        if not a:
            continue
        if "@" in a:
            keys.add(normalise("email", a))
        digits = _digits(a)
        if digits:
            keys.add(digits)
            keys.add(digits[-10:])
        keys.add(re.sub(r"[\s-]", "", a).upper())
    return keys


def find_pii(text: str, allowed: Iterable[str] = ()) -> list[PiiItem]:
    """Personal data in `text` not listed in `allowed`, in order of position (no overlaps)."""
    keys = _allowed_keys(allowed)
    items: list[PiiItem] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        if any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        value = text[start:end]
        if normalise(kind, value) not in keys:
            items.append(PiiItem(kind, value, start, end))

    for m in EMAIL.finditer(text):
        add("email", *m.span())
    for m in SSN.finditer(text):
        add("national_id", *m.span())
    for m in SSN_KEYWORD.finditer(text):
        add("national_id", *m.span(1))
    for m in NINO.finditer(text):
        add("national_id", *m.span())
    for m in CARD.finditer(text):
        digits = _digits(m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits) and len(set(digits)) > 1:
            add("card", *m.span())
    for m in PHONE.finditer(text):
        if 8 <= len(_digits(m.group(0))) <= 15:
            add("phone", *m.span())
    return sorted(items, key=lambda i: i.start)


def redact(text: str, items: Iterable[PiiItem]) -> str:
    """`text` with each item replaced by "[redacted <kind>]"."""
    out = text
    for item in sorted(items, key=lambda i: i.start, reverse=True):
        out = out[: item.start] + f"[redacted {LABELS[item.kind]}]" + out[item.end :]
    return out
