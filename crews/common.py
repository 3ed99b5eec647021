"""What the crews share: running domain work off the event loop (`in_session`), the rep's
question as a prompt reads it (`question_of`), and the check that a model-phrased reply still
states the computed figures and invents none.

Figure formatting and citations are in `tools.formatting` and `tools.sources`, `CrewDeps` in
`crews.deps`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from contracts import CrewRequest
from crews.deps import CrewDeps
from guards.numbers import FIGURE, numbers_in, same_number
from guards.text import split_sentences
from tools.session import run_in_session

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")


async def in_session(deps: CrewDeps, fn: Callable[[Session], T]) -> T:
    """Run `fn(session)` in one transaction on `deps.engine` in a worker thread (the request path
    is async); its exceptions propagate."""
    return await run_in_session(deps.engine, fn)


# --- grounding of a phrased reply ------------------------------------------------------------
# Numbers and sentences are read with the guards' vocabulary (`guards.numbers`, `guards.text`):
# `numbers_in` (re-exported here for the crews) reads numbers as written, `same_number` compares.


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
            if not any(same_number(g, n) for g in got):
                return False
    allowed = [n for text in allowed_from for n in numbers_in(text)]
    if any(not any(same_number(g, a) for a in allowed) for g in got):
        return False
    low = reply.lower()
    return all(name.lower() in low for name in required_names)


#: Longest guard feedback added to a re-asked crew's prompt (characters; prompts stay short).
FEEDBACK_MAX_CHARS = 600


def reading(request: CrewRequest) -> frozenset[int] | None:
    """The reps whose deals the caller reads (`Caller.read_rep_ids`; None: every rep, or no
    caller: the system's own work)."""
    return request.caller.read_rep_ids if request.caller is not None else None


def question_of(request: CrewRequest) -> str:
    """The rep's message, trimmed to 500 characters for a short prompt; when the guards re-ask the
    crew (`request.feedback`), followed by their note on why the previous answer was not shown
    (at most FEEDBACK_MAX_CHARS characters)."""
    question = request.message.strip()[:500]
    if request.feedback:
        question += "\n\n" + request.feedback.strip()[:FEEDBACK_MAX_CHARS]
    return question


def strip_ungrounded(text: str, allowed_from: Iterable[str]) -> str:
    """`text` without the sentences that write a number found in none of `allowed_from` (the
    records given to the model): a model-written summary may not invent a figure."""
    allowed = [n for t in allowed_from for n in numbers_in(t)]
    kept = [
        s
        for s in split_sentences(text)
        if all(any(same_number(n, a) for a in allowed) for n in numbers_in(s))
    ]
    return " ".join(kept)


#: The marker of a list item at the start of a line the model wrote: "-", "*", "•", "1." or "1)".
_LIST_MARKER = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")


def list_item(unit: str, keep: Iterable[str] = ()) -> tuple[bool, str]:
    """A unit of streamed model prose (a sentence or line from `guards.text.SentenceSplitter`) as
    (whether it is a list item, its text): the marker removed, sentences writing a figure dropped
    (:func:`drop_numeric_sentences`, `keep` as there), stripped; "" when nothing is left."""
    marker = _LIST_MARKER.match(unit)
    text = unit[marker.end() :] if marker else unit.strip()
    return marker is not None, drop_numeric_sentences(text, keep).strip()


def drop_numeric_sentences(text: str, keep: Iterable[str] = ()) -> str:
    """`text` without its sentences that write a figure. Model-written prose (briefings, next
    steps, email bodies) carries no figures: measured on the 1.5B model, it attributes totals to
    the wrong product or rounds them into claims ("over $1 million"); figures are added from the
    records by the crew instead. Names in `keep` (e.g. the product "GTK 500") are not figures."""
    names = sorted({k for k in keep if k}, key=len, reverse=True)
    out = []
    for sentence in split_sentences(text):
        probe = sentence
        for name in names:
            probe = probe.replace(name, "")
        if not FIGURE.search(probe):
            out.append(sentence)
    return " ".join(out)
