"""Grounding: every name in a reply exists in the CRM and every figure comes from the turn's tool
results. The pure logic behind the `flowstate/grounding` validator (see `guards.names` and
`guards.numbers` for the rules on names and on figures).

Allowed without a fact: figures and names the rep wrote in the message (a reply may repeat "20
units" or "Priya Shah"), small whole numbers that count items of the facts ("5 actions" when a
list in the facts has 5 items) or of the reply's own list, and `allowed_numbers`. Discount figures
are left to the discount-policy validator, which owns them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from crm.names import DEAL_ID, NameIndex
from guards.discounts import find_discounts
from guards.names import UnknownName, as_index, unknown_names
from guards.numbers import FactSet, extract_numbers

_LIST_ITEM = re.compile(r"(?m)^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+\S")


@dataclass(frozen=True, slots=True)
class GroundingIssue:
    """An ungrounded name or figure: its text, offsets, and why."""

    kind: str  # "name" | "figure"
    text: str
    start: int
    end: int
    reason: str


def _phrase_spans(text: str, phrases: Iterable[str]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    low = text.lower()
    for p in phrases:
        p = p.strip().lower()
        if len(p) < 3:
            continue
        i = low.find(p)
        while i >= 0:
            spans.append((i, i + len(p)))
            i = low.find(p, i + 1)
    return spans


def as_facts(facts: FactSet | Sequence[Any] | None) -> FactSet:
    """`facts` as a FactSet (tool results are parsed once)."""
    return facts if isinstance(facts, FactSet) else FactSet.from_facts(facts or [])


def check_grounding(
    text: str,
    known_names: NameIndex | Iterable[str] | None,
    facts: FactSet | Sequence[Any] | None,
    *,
    message: str = "",
    ignore_phrases: Iterable[str] = (),
    allowed_numbers: Iterable[float] = (),
    small_count_max: int = 20,
    check_names: bool = True,
    check_numbers: bool = True,
) -> list[GroundingIssue]:
    """Ungrounded names and figures of `text`, in order of position.

    `known_names`: the CRM's names (a NameIndex or plain strings); `facts`: the turn's tool results
    (`CrewResponse.facts`) or a FactSet; `message`: the rep's message; `ignore_phrases`: texts whose
    digits are not figures (the postal address of an email footer).
    """
    index = as_index(known_names)
    fact_set = as_facts(facts)
    ignore = [p for p in ignore_phrases if p]
    issues: list[GroundingIssue] = []

    if check_names:
        also = [message, *fact_set.strings, *ignore]
        for u in unknown_names(text, index, also_known=also):
            issues.append(_name_issue(u))

    if check_numbers:
        spans = _phrase_spans(text, ignore)
        pat = index.digit_name_pattern
        if pat is not None:
            spans += [m.span() for m in pat.finditer(text)]
        spans += [m.span() for m in DEAL_ID.finditer(text)]
        spans += [(d.start, d.end) for d in find_discounts(text)]
        said = FactSet.from_facts([message]) if message else FactSet()
        said.add(allowed_numbers)
        items_listed = len(_LIST_ITEM.findall(text))
        for n in extract_numbers(text, ignore=spans):
            if fact_set.supports(n) or said.supports(n):
                continue
            if (
                n.is_small_int
                and n.value <= small_count_max
                and (int(n.value) in fact_set.counts or int(n.value) == items_listed)
            ):
                continue
            issues.append(
                GroundingIssue("figure", n.raw, n.start, n.end, "figure not found in the tool results")
            )
    return sorted(issues, key=lambda i: i.start)


def _name_issue(u: UnknownName) -> GroundingIssue:
    return GroundingIssue("name", u.text, u.start, u.end, u.reason)


def describe(issues: Sequence[GroundingIssue], limit: int = 5) -> str:
    """One line for a verdict or a re-ask prompt, e.g. 'figure "$2.1M" not found in the tool
    results; name "Northwind" not in the CRM'."""
    parts = [f'{i.kind} "{i.text}": {i.reason}' for i in issues[:limit]]
    more = len(issues) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
