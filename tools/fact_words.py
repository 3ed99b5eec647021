"""Words the fact rules share (`tools.account_facts`, `tools.directory_facts`, and the router's
check of them): what names accounts, what counts or lists, and what makes a question one about
deals rather than about the records themselves. Matched on the masked message
(`tools.query_plan.masked`)."""

from __future__ import annotations

import re

__all__ = ["ACCOUNT_WORD", "COUNTING", "DEALS_WORDS", "LISTING"]


def _rx(p: str) -> re.Pattern[str]:
    return re.compile(p, re.I)


ACCOUNT_WORD = _rx(
    r"\b(accounts?|companies|company|customers?|clients?|firms?|organi[sz]ations?|businesses)\b"
)
COUNTING = _rx(r"\b(how many|number of|count|total)\b")
LISTING = _rx(r"\b(which|what|list|show|name|who are|give me|find)\b")
DEALS_WORDS = _rx(
    r"\b(deals?|won|win|wins|win rate|revenue (we|have we)|sold|sell|opportunit\w*|pipeline|close[ds]?|"
    r"forecast\w*|weighted|stuck|cycle|quota|bookings)\b"
)
