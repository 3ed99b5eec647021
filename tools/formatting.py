"""How figures and derived counts are written in a reply (USD, percentages, days, counts, name
lists).

The grounding guard (`guards.grounding`) shows a reply only when every number in it is found in
the turn's facts. A count the reply derives from a list ("and 5 more", "compared across 7
products") is in no tool result, so the helpers that write one return the text together with the
fact that states it (`Counted`): the caller adds `.facts` to the response's facts next to the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = [
    "Counted",
    "compared_across",
    "count",
    "count_fact",
    "days",
    "join_names",
    "money",
    "names_and_more",
    "pct",
]


def money(v: float | None) -> str:
    """USD as shown to a rep: "$2,216,387" for whole dollars, "$5,489.88" otherwise; "n/a" for
    None."""
    if v is None:
        return "n/a"
    if abs(v - round(v)) < 0.005:
        return f"${round(v):,}"
    return f"${v:,.2f}"


def pct(v: float | None) -> str:
    """A percentage with one decimal: "63.2%" ("n/a" for None)."""
    return "n/a" if v is None else f"{v:.1f}%"


def days(v: float | None) -> str:
    """A duration in days with one decimal: "50.0 days" ("n/a" for None)."""
    return "n/a" if v is None else f"{v:.1f} days"


def count(n: int, noun: str) -> str:
    """ "1 deal", "3 deals" (noun given in the singular)."""
    plural = noun if noun.endswith(("series", "s")) else noun + "s"  # "3 product series"
    return f"{n:,} {noun if n == 1 else plural}"


def join_names(names: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


class Counted(NamedTuple):
    """Reply text that writes a derived count, and the facts holding that count."""

    text: str
    facts: list[dict[str, Any]]


def count_fact(metric: str, value: int) -> dict[str, Any]:
    """A count written in a reply as a fact: {"metric": "groups_compared", "value": 7}."""
    return {"metric": metric, "value": value}


def names_and_more(names: Sequence[str], limit: int, total: int | None = None) -> Counted:
    """The first `limit` names joined ("A, B and C"); when `total` (default: len(names)) is
    larger, "A, B, C and 5 more" with the fact {"metric": "more_items", "value": 5}."""
    shown = list(names[:limit])
    more = (len(names) if total is None else total) - len(shown)
    if more <= 0:
        return Counted(join_names(shown), [])
    return Counted(", ".join(shown) + f" and {more:,} more", [count_fact("more_items", more)])


def compared_across(n: int, noun: str) -> Counted:
    """ "(Compared across 7 products.)" after a ranking's winner, with the fact
    {"metric": "groups_compared", "value": 7} (noun given in the singular)."""
    return Counted(f"(Compared across {count(n, noun)}.)", [count_fact("groups_compared", n)])
