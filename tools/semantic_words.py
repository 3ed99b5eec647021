"""What the words of a question settle about its query, before and over any model.

A 1.5B planner fills every part a schema offers and copies its examples, so what the question
says in plain words is read here and wins (`tools.semantic_plan.complete_query`):

- the measure and subject of the common forms: "how many accounts ..." (a count of accounts),
  "what percentage / share / proportion of our products ..." (a share of products),
  "which reps ..." (a list of reps);
- conditions stated as figures, with the layer's attribute they bound: "more than 1,000
  employees", "founded before 1990", "priced under $1,000", "revenue above 500 million";
- whether the question asks for a grouping ("by office", "per sector", "which sector ..."), a
  ranking ("top 3", "highest", "cheapest") or a filter on deal metrics ("never bought", "with no
  won deal", "that have open deals"); a part the model chose that no word asks for is dropped.

Pure text, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crm.semantic import Condition
from crm.semantic.layer import Entity, FieldName
from crm.semantic.query import Measure, Op

__all__ = ["QuestionWords", "read_question"]


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


_NOUNS: dict[Entity, str] = {
    "account": r"accounts?|compan(?:y|ies)|customers?|clients?|firms?|organi[sz]ations?|businesses",
    "product": r"products?|items?",
    "rep": r"reps?|sales ?reps?|agents?|sales ?people|salespeople|sellers?|representatives?",
    "deal": r"deals?|opportunit(?:y|ies)",
}
_ANY_NOUN = "|".join(f"(?P<{k}>{v})" for k, v in _NOUNS.items())
_FILLER = r"(?:(?:our|the|all|of|these|those|distinct|different|unique|active)\s+)*(?:[\w-]+\s+){0,2}?"

SHARE = _rx(
    rf"\b(?:(?:what|which)\s+)?(?:percent(?:age)?|share|proportion|fraction|%)\s+of\s+{_FILLER}"
    rf"(?:{_ANY_NOUN})\b"
)
COUNT = _rx(rf"\b(?:how many|number of|count of|count the)\s+{_FILLER}(?:{_ANY_NOUN})\b")
LIST = _rx(rf"^\s*(?:which|list|show(?: me)?|name|give me|find)\s+(?:of\s+)?{_FILLER}(?:{_ANY_NOUN})\b")

GROUPING = _rx(
    r"\b(by|per|each|every|for each|broken down|breakdown|split)\s+(the\s+)?(sector|industry|office|region|"
    r"series|manager|team|country|location|stage|month|quarter|year|product|account|rep|agent)s?\b|"
    r"\b(which|what)\s+(sector|industry|office|region|series|manager|team|country|location|stage|month|"
    r"quarter|year)s?\b"
)
RANKING = _rx(
    r"\b(top|bottom|most|least|highest|lowest|largest|biggest|smallest|best|worst|fewest|greatest|"
    r"cheapest|priciest|most expensive|oldest|youngest|newest|leading|rank\w*|max(imum)?|min(imum)?)\b"
)
DEAL_FILTER = _rx(
    r"\b(never|no (won|lost|open|closed)? ?deals?|without (any )?(won |lost |open )?deals?|"
    r"haven'?t|have not|hasn'?t|not yet|at least (one|\d+)|with (a |an |any |some )?(won|lost|open|closed) "
    r"deals?|(that|who|which) (have|has|had) (won|lost|open|closed|any|no|more|fewer)|more than \d+ deals|"
    r"bought|purchased|customers? of)\b"
)

_MORE = r"(?:more than|over|above|greater than|bigger than|larger than|exceeding|at least|>=?)"
_LESS = r"(?:fewer than|less than|under|below|smaller than|at most|no more than|<=?)"
_NUM = r"\$?\s?(\d[\d,]*(?:\.\d+)?)\s*(k|thousand|m|mn|million|bn|billion)?"


@dataclass(frozen=True)
class _Bound:
    """A figure pattern: `pattern` has groups (comparison, number, scale) or (comparison, year)."""

    field: FieldName
    pattern: re.Pattern[str]


_BOUNDS: list[_Bound] = [
    _Bound(
        "account.employees",
        _rx(rf"({_MORE}|{_LESS})\s+{_NUM}\s*(?:employees|staff|people|workers|headcount)\b"),
    ),
    _Bound(
        "account.year_established",
        _rx(
            r"\b(?:founded|established|incorporated|started|created)\s+"
            r"(before|after|since|in|prior to)\s+(\d{4})\b"
        ),
    ),
    _Bound(
        "product.list_price",
        _rx(rf"\b(?:price[ds]?|cost(?:s|ing)?|list price)\s+(?:of\s+)?({_MORE}|{_LESS})\s+{_NUM}"),
    ),
    _Bound(
        "account.revenue_musd",
        _rx(rf"\b(?:annual )?revenue\s+(?:of\s+)?({_MORE}|{_LESS})\s+{_NUM}"),
    ),
]


def _op(word: str) -> Op:
    w = word.lower().strip()
    if w in ("before", "prior to"):
        return "lt"
    if w in ("after",):
        return "gt"
    if w in ("since",):
        return "gte"
    if w == "in":
        return "eq"
    if w.startswith("at least") or w == ">=":
        return "gte"
    if w.startswith("at most") or w.startswith("no more") or w == "<=":
        return "lte"
    return "gt" if re.match(_MORE, w, re.I) else "lt"


def _scaled(number: str, scale: str | None, field: FieldName) -> float:
    value = float(number.replace(",", ""))
    factor = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "bn": 1e9, "billion": 1e9}
    value *= factor.get((scale or "").lower(), 1)
    if field == "account.revenue_musd":
        # the layer counts an account's revenue in millions: "500 million" and "500" both mean 500
        value = value / 1e6 if value >= 1e5 else value
    return value


@dataclass(frozen=True)
class QuestionWords:
    """What the question's words settle (None / empty: left to the model)."""

    measure: Measure | None = None
    subject: Entity | None = None
    conditions: list[Condition] = field(default_factory=list)
    grouping: bool = False
    ranking: bool = False
    deal_filter: bool = False


def _noun(match: re.Match[str]) -> Entity | None:
    for kind in _NOUNS:
        if match.group(kind):
            return kind
    return None


def read_question(message: str) -> QuestionWords:
    """The parts of the query that `message`'s words settle (see the module docstring)."""
    measure: Measure | None = None
    subject: Entity | None = None
    for rx, m in ((SHARE, "share"), (COUNT, "count"), (LIST, "list")):
        found = rx.search(message)
        if found:
            measure, subject = m, _noun(found)  # type: ignore[assignment]
            break
    conditions = []
    for bound in _BOUNDS:
        for found in bound.pattern.finditer(message):
            op = _op(found.group(1))
            if bound.field == "account.year_established":
                value: float = float(found.group(2))
            else:
                value = _scaled(found.group(2), found.group(3), bound.field)
            conditions.append(Condition(field=bound.field, op=op, value=value))
    return QuestionWords(
        measure=measure,
        subject=subject,
        conditions=conditions,
        grouping=bool(GROUPING.search(message)),
        ranking=bool(RANKING.search(message)),
        deal_filter=bool(DEAL_FILTER.search(message)),
    )
