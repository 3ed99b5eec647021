"""Numbers in a reply and the figures of the turn's tool results (grounding of figures).

A figure in a reply is grounded when some number in the facts rounds (or truncates) to it at the
precision the reply shows: "63.2%" is grounded by 63.2, 63.24 or 0.632; "$4.5K" by 4,514;
"1,234.5" by 1234.5; "$1.1 billion" by 1100.04 stored in millions. Approximate wording widens the
precision to the written zeros ("about 4,500" is grounded by 4,514, "4,500" alone is not), and
bounds are read as bounds ("more than 4,000": some fact in [4,000, 5,000]).

Not figures, so never checked: years (1900-2099 written without separators), dates, times,
ordinals, quarters ("Q3"), list markers ("1." at a line start, "Step 2", "Week 3"), scheduling
durations ("in 3 days", "within 2 weeks"), numbers inside names or ids ("GTK 500", "1C1I7A6R"),
emails, URLs and phone numbers. Callers add more through `ignore` spans (discount offers, which the
discount-policy validator owns; the company's postal address in an email footer).

The crews check their model-phrased text with the simpler readings of this module too: numbers
as written (`PLAIN_NUMBER`, `numbers_in`, compared with `same_number`) and figures standing alone
in prose (`FIGURE`).
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from guards.text import finditer_all, mask

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_UNIT_TIME = r"(?:business\s+|working\s+|calendar\s+)?(?:minutes?|mins?|hours?|hrs?|days?|weeks?|months?)"

#: Spans that hold digits but are not figures (see the module docstring).
NOT_FIGURES: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),  # email
    re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE),  # URL
    re.compile(r"(?<![\w.])\+?\d{1,3}[\s.-]?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)"),  # phone
    re.compile(r"(?<!\d)\(\d{3}\)\s?\d{3}[\s.-]\d{4}(?!\d)"),  # phone (555) 123-4567
    re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?Z?)?\b"),  # ISO date
    re.compile(r"\b\d{1,4}/\d{1,2}/\d{1,4}\b|\b24/7\b"),  # 03/01/2017, 24/7
    re.compile(rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b", re.IGNORECASE),
    re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b(?:,?\s+\d{{4}})?", re.IGNORECASE),
    re.compile(rf"\b{_MONTH},?\s+\d{{4}}\b", re.IGNORECASE),
    re.compile(r"\b\d{1,2}:\d{2}(?:\s?[ap]\.?m\.?)?(?!\d)", re.IGNORECASE),  # 10:30 am
    re.compile(r"\b\d{1,2}\s?[ap]\.?m\b\.?", re.IGNORECASE),  # 3pm
    re.compile(r"\b\d+(?:st|nd|rd|th)\b", re.IGNORECASE),  # ordinals
    re.compile(r"\b(?:[QH][1-4]|FY\s?\d{2,4})\b", re.IGNORECASE),  # quarters, halves, fiscal years
    re.compile(r"(?m)^[ \t>*-]*\(?\d{1,2}[.)](?=\s)"),  # numbered list marker
    re.compile(
        r"\b(?:step|option|phase|week|day|tier|part|item|no\.|number|version|v|milestone|sprint|"
        r"stage|round|level|slide|section|page)\s?#?\d+\b",
        re.IGNORECASE,
    ),
    re.compile(r"#\d+\b"),
    re.compile(
        rf"\b(?:in|within|next|after|every|over\s+the\s+next|for\s+the\s+next|by|before)\s+"
        rf"(?:the\s+next\s+|another\s+)?\d+(?:\s*(?:-|to)\s*\d+)?\s+{_UNIT_TIME}\b",
        re.IGNORECASE,
    ),
)

#: A figure as the grounding guard reads it: currency, sign, digits (with thousands separators),
#: multiplier ("4.5K", "1.1 billion"), percent and a trailing "+" (`extract_numbers`).
_NUMBER = re.compile(
    r"(?<![\w.,/])(?<![A-Za-z]-)"
    r"(?P<cur>(?:US)?\$|USD\s?|EUR\s?|€|£)?\s?"
    r"(?P<sign>[-\u2212])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s?(?P<mult>thousand|million|billion|mn|bn|[kKmMbB])(?![A-Za-z]))?"
    r"(?:\s?(?P<pct>%|percent\b|per\s?cent\b|pct\b|percentage\s+points?\b|pp\b))?"
    r"(?P<plus>\+)?"
    r"(?![A-Za-z0-9])",
)
_MULT = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_APPROX = re.compile(
    r"(?:\b(?:about|around|roughly|approximately|approx\.?|some|close\s+to|circa|ca\.)|~)\s*$",
    re.IGNORECASE,
)
_LOWER_BOUND = re.compile(
    r"(?:\b(?:over|more\s+than|above|at\s+least|upwards\s+of|in\s+excess\s+of|exceeds?|exceeding)|>)\s*$",
    re.IGNORECASE,
)
_UPPER_BOUND = re.compile(
    r"(?:\b(?:under|less\s+than|below|at\s+most|nearly|almost|just\s+under|up\s+to)|<)\s*$",
    re.IGNORECASE,
)


#: Numbers as a reader (and the eval scorer) sees them: "2,216,387", "63.2", "-4": digits anywhere,
#: no units or multipliers (`numbers_in`).
PLAIN_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")

#: A figure in prose: a number standing on its own ("2017", "$3,393", "15%"), not digits inside an
#: identifier such as the opportunity id "H176AX96".
FIGURE = re.compile(r"(?<![A-Za-z0-9])[-$€£]?\d[\d,.]*%?(?![A-Za-z0-9])")


def numbers_in(text: str) -> list[float]:
    """Every `PLAIN_NUMBER` written in `text`, as floats (thousands separators removed)."""
    out = []
    for m in PLAIN_NUMBER.findall(text):
        try:
            out.append(float(m.replace(",", "")))
        except ValueError:
            continue
    return out


def same_number(a: float, b: float) -> bool:
    """Whether `a` states `b`: within 0.051 (one decimal shown, rounded) or a millionth of `b`."""
    return abs(a - b) <= max(0.051, abs(b) * 1e-6)


@dataclass(frozen=True, slots=True)
class NumberMention:
    """A figure written in a text.

    `value` is in base units (multipliers applied: "$4.5K" -> 4500.0); `unit` is the last digit
    shown (widened to the written zeros when approximate) and `tolerance` half of it, in base
    units; `round_unit` the step the written zeros suggest ("4,000" -> 1,000); `percent` when
    written with %/percent; `bound` is "approx" | "lower" | "upper" | None from the words around
    it ("about", "more than", "nearly", "1,000+").
    """

    raw: str
    value: float
    tolerance: float
    unit: float
    round_unit: float
    percent: bool
    bound: str | None
    start: int
    end: int

    @property
    def is_small_int(self) -> bool:
        return not self.percent and self.value == int(self.value) and 0 <= self.value <= 1000


_DIGIT = re.compile(r"\d")


@lru_cache(maxsize=4096)
def _figures_of(text: str) -> tuple[float, ...]:
    """The values of the figures in a fact's text. Cached: the same records (names, stages,
    dates, amounts as text) come back turn after turn, and each text is read with some twenty
    patterns."""
    return tuple(n.value for n in extract_numbers(text))


def _trailing_zeros(digits: str) -> int:
    stripped = digits.rstrip("0")
    return len(digits) - len(stripped) if stripped else 0


def extract_numbers(text: str, ignore: Iterable[tuple[int, int]] = ()) -> list[NumberMention]:
    """Every figure in `text` outside the not-a-figure patterns and the `ignore` spans."""
    if _DIGIT.search(text) is None:  # every figure has a digit; most fact strings have none
        return []
    masked = mask(text, [*finditer_all(NOT_FIGURES, text), *ignore])
    out: list[NumberMention] = []
    for m in _NUMBER.finditer(masked):
        num = m.group("num")
        mult_word = (m.group("mult") or "").lower()
        pct = m.group("pct")
        cur = m.group("cur")
        plain = num.replace(",", "")
        # A bare year is a date, not a figure ("since 2017", "established in 1996").
        if (
            not pct
            and not cur
            and not mult_word
            and "," not in num
            and "." not in num
            and len(plain) == 4
            and 1900 <= int(plain) <= 2099
        ):
            continue
        # "m" right after a number without currency is more often metres/minutes than millions.
        if mult_word in {"m", "b"} and not cur:
            mult_word = ""
        mult = _MULT.get(mult_word, 1.0)
        decimals = len(plain.split(".")[1]) if "." in plain else 0
        unit = 10.0**-decimals * mult
        before = masked[max(0, m.start() - 24) : m.start()]
        bound = (
            "approx"
            if _APPROX.search(before)
            else "lower"
            if _LOWER_BOUND.search(before)
            else "upper"
            if _UPPER_BOUND.search(before)
            else None
        )
        if m.group("plus"):
            bound = "lower"  # "1,000+ employees"
        round_unit = 10.0 ** _trailing_zeros(plain.split(".")[0]) * mult if decimals == 0 else unit
        if bound == "approx":
            unit = max(unit, round_unit)
        value = float(plain) * mult
        sign_at = m.start("sign")
        # "10-15" is a range, not minus fifteen.
        if m.group("sign") and not (sign_at > 0 and masked[sign_at - 1].isdigit()):
            value = -value
        start = m.start("cur") if cur else sign_at if m.group("sign") else m.start("num")
        out.append(
            NumberMention(
                raw=text[start : m.end()].strip(),
                value=value,
                tolerance=unit / 2,
                unit=unit,
                round_unit=round_unit,
                percent=bool(pct),
                bound=bound,
                start=start,
                end=m.end(),
            )
        )
    return out


@dataclass
class FactSet:
    """The numbers a reply may cite, taken from the turn's tool results (`CrewResponse.facts`).

    `values`: every number in the facts, sorted (ints and floats anywhere in the structure, and
    figures written inside string values); `counts`: sizes of the lists in the facts (and the
    number of records per `kind`), which a reply may state ("5 actions"); `strings`: every string
    value (names the reply may repeat).
    """

    values: list[float] = field(default_factory=list)
    counts: set[int] = field(default_factory=set)
    strings: list[str] = field(default_factory=list)

    @classmethod
    def from_facts(cls, facts: Sequence[Mapping[str, Any]] | Sequence[Any] | None) -> FactSet:
        values: list[float] = []
        counts: set[int] = set()
        strings: list[str] = []

        def walk(obj: Any) -> None:
            if isinstance(obj, bool) or obj is None:
                return
            if isinstance(obj, (int, float)):
                if math.isfinite(obj):
                    values.append(float(obj))
            elif isinstance(obj, str):
                strings.append(obj)
                values.extend(_figures_of(obj))
            elif isinstance(obj, Mapping):
                for v in obj.values():
                    walk(v)
            elif isinstance(obj, (list, tuple, set, frozenset)):
                counts.add(len(obj))
                for v in obj:
                    walk(v)
            else:  # pydantic models, decimals, dates...
                dump = getattr(obj, "model_dump", None)
                if callable(dump):
                    walk(dump())
                else:
                    try:
                        values.append(float(obj))
                    except (TypeError, ValueError):
                        strings.append(str(obj))

        items = list(facts or [])
        walk(items)
        kinds = Counter(str(f.get("kind") or f.get("type") or "") for f in items if isinstance(f, Mapping))
        counts.update(kinds.values())
        return cls(values=sorted(values), counts=counts, strings=strings)

    def add(self, numbers: Iterable[float]) -> None:
        """Allow more numbers (e.g. the ones the rep wrote in the message)."""
        self.values = sorted([*self.values, *numbers])

    def _any_in(self, lo: float, hi: float) -> bool:
        i = bisect.bisect_left(self.values, lo)
        return i < len(self.values) and self.values[i] <= hi

    def supports(self, n: NumberMention) -> bool:
        """True if some fact, read at the precision `n` shows, is the figure `n`."""
        eps = 1e-9 * max(1.0, abs(n.value))
        targets = [n.value]
        if n.percent:
            targets.append(n.value / 100.0)  # a ratio in the facts: 0.632 -> "63.2%"
        # Facts stored in thousands/millions/billions ("revenue_musd": 1100.04 -> "$1.1 billion").
        if not n.percent:
            targets += [n.value / 1e3, n.value / 1e6, n.value / 1e9]
        for t in targets:
            scale = t / n.value if n.value else 1.0
            tol = n.tolerance * abs(scale) + eps * abs(scale)
            unit = n.unit * abs(scale)
            # A bound is true of a fact within a quarter of it or one rounding step of it:
            # "more than 4,000" holds for 4,514, "1,000+" for 1,188, "nearly 50" for 48.
            slack = max(abs(t) * 0.25, n.round_unit * abs(scale))
            if n.bound == "lower":
                if self._any_in(t, t + slack):
                    return True
                continue
            if n.bound == "upper":
                if self._any_in(t - slack, t):
                    return True
                continue
            # round-half at the shown precision, or truncation toward zero ("63.16" -> "63.1")
            if self._any_in(t - tol, t + tol):
                return True
            lo, hi = (t, t + unit) if t >= 0 else (t - unit, t)
            if self._any_in(lo, hi - eps * abs(scale)):
                return True
        return False
