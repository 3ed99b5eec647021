"""What the five crews share: their dependencies (`CrewDeps`), running domain work off the event
loop, citations (`Source`), figure formatting, and the check that a model-phrased reply still
states the computed figures and invents none.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from crews.contracts import CrewRequest, Source
from crews.llm import LLMSettings
from crm.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from crm.embeddings import Embedder
    from crm.schemas import AccountBrief, DealOut

T = TypeVar("T")


@dataclass
class CrewDeps:
    """What a crew needs: the sync SQLAlchemy `engine` (domain code is sync; it runs in a worker
    thread), the LLM endpoint (`llm`: see `crews.llm.LLMSettings`), and the `embedder` for memory
    search (None: no memory search). `word_answers` False returns computed answers (pipeline
    figures, account facts) as their template sentence without asking the model to reword them:
    one LLM call less per such turn (~3 s on the 2-core machine), same figures."""

    engine: Engine
    llm: LLMSettings
    embedder: Embedder | None = None
    word_answers: bool = True


def _in_session(engine: Engine, fn: Callable[[Session], T]) -> T:
    with session_scope(engine) as session:
        return fn(session)


async def in_session(deps: CrewDeps, fn: Callable[[Session], T]) -> T:
    """Run `fn(session)` in one transaction in a worker thread (the request path is async)."""
    return await asyncio.to_thread(_in_session, deps.engine, fn)


# --- formatting -------------------------------------------------------------------------------


def money(v: float | None) -> str:
    """USD as shown to a rep: "$2,216,387" for whole dollars, "$5,489.88" otherwise."""
    if v is None:
        return "n/a"
    if abs(v - round(v)) < 0.005:
        return f"${round(v):,}"
    return f"${v:,.2f}"


def pct(v: float | None) -> str:
    """A percentage with one decimal: "63.2%"."""
    return "n/a" if v is None else f"{v:.1f}%"


def days(v: float | None) -> str:
    """A duration in days with one decimal: "50.0 days"."""
    return "n/a" if v is None else f"{v:.1f} days"


def count(n: int, noun: str) -> str:
    """ "1 deal", "3 deals" (noun given in the singular)."""
    return f"{n:,} {noun if n == 1 else noun + 's'}"


def join_names(names: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# --- counts written into a reply --------------------------------------------------------------
# The grounding guard (`guards.grounding`) shows a reply only when every number in it is found in
# the turn's facts. A count the reply derives from a list ("and 5 more", "compared across 7
# products") is in no tool result, so these helpers return the text together with the fact that
# states it: a crew adds `.facts` to `CrewResponse.facts` next to the text.


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


# --- sources ----------------------------------------------------------------------------------


def deal_source(d: DealOut) -> Source:
    label = f"Deal {d.external_id}" + (f" ({d.account_name})" if d.account_name else "")
    return Source(
        kind="deal",
        id=d.external_id,
        label=label,
        data={
            "deal_id": d.id,
            "account": d.account_name,
            "product": d.product_name,
            "rep": d.rep_name,
            "stage": d.stage,
            "engage_date": d.engage_date.isoformat() if d.engage_date else None,
            "close_date": d.close_date.isoformat() if d.close_date else None,
            "value": d.value,
        },
    )


def account_source(a: AccountBrief, **data: Any) -> Source:
    return Source(kind="account", id=str(a.id), label=a.name, data={"sector": a.sector, **data})


def metric_source(name: str, label: str, value: Any, **data: Any) -> Source:
    return Source(kind="metric", id=name, label=label, data={"value": value, **data})


# --- grounding of a phrased reply ------------------------------------------------------------

#: Numbers as a reader (and the eval scorer) sees them: "2,216,387", "63.2", "-4".
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def numbers_in(text: str) -> list[float]:
    """Every number written in `text` (thousands separators removed)."""
    out = []
    for m in NUMBER.findall(text):
        try:
            out.append(float(m.replace(",", "")))
        except ValueError:
            continue
    return out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(0.051, abs(b) * 1e-6)


def reply_is_grounded(
    reply: str,
    *,
    required: Iterable[str],
    allowed_from: Iterable[str],
    required_names: Iterable[str] = (),
) -> bool:
    """True when `reply` states every number written in the `required` texts (e.g. the computed
    draft answer), names every one of `required_names`, and writes no number that appears in none
    of the `allowed_from` texts (draft, question, facts). Used to fall back to the template
    sentence when the model drops or invents a figure."""
    got = numbers_in(reply)
    for text in required:
        for n in numbers_in(text):
            if not any(_close(g, n) for g in got):
                return False
    allowed = [n for text in allowed_from for n in numbers_in(text)]
    if any(not any(_close(g, a) for a in allowed) for g in got):
        return False
    low = reply.lower()
    return all(name.lower() in low for name in required_names)


#: Longest guard feedback added to a re-asked crew's prompt (characters; prompts stay short).
FEEDBACK_MAX_CHARS = 600


def question_of(request: CrewRequest) -> str:
    """The rep's message, trimmed to a length fit for a short prompt; when the guards re-ask the
    crew (`request.feedback`, issue 4), followed by their note on why the previous answer was not
    shown."""
    question = request.message.strip()[:500]
    if request.feedback:
        question += "\n\n" + request.feedback.strip()[:FEEDBACK_MAX_CHARS]
    return question


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def strip_ungrounded(text: str, allowed_from: Iterable[str]) -> str:
    """`text` without the sentences that write a number found in none of `allowed_from` (the
    records given to the model): a model-written summary may not invent a figure."""
    allowed = [n for t in allowed_from for n in numbers_in(t)]
    kept = [
        s
        for s in _SENTENCE.split(text.strip())
        if all(any(_close(n, a) for a in allowed) for n in numbers_in(s))
    ]
    return " ".join(kept)


#: A figure in prose: a number standing on its own ("2017", "$3,393", "15%"), not digits inside an
#: identifier such as the opportunity id "H176AX96".
FIGURE = re.compile(r"(?<![A-Za-z0-9])[-$€£]?\d[\d,.]*%?(?![A-Za-z0-9])")


def drop_numeric_sentences(text: str, keep: Iterable[str] = ()) -> str:
    """`text` without its sentences that write a figure. Model-written prose (briefings, next
    steps, email bodies) carries no figures: measured on the 1.5B model, it attributes totals to
    the wrong product or rounds them into claims ("over $1 million"); figures are added from the
    records by the crew instead. Names in `keep` (e.g. the product "GTK 500") are not figures."""
    names = sorted({k for k in keep if k}, key=len, reverse=True)
    out = []
    for sentence in _SENTENCE.split(text.strip()):
        probe = sentence
        for name in names:
            probe = probe.replace(name, "")
        if not FIGURE.search(probe):
            out.append(sentence)
    return " ".join(out)
