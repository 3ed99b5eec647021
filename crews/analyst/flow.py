"""Word a computed answer with the analyst crew, keeping its figures.

The crew (one agent, one task, JSON `PipelineReply`) rewrites the template sentence as a reply to
the question. The reply is kept only if `crews.common.reply_is_grounded` holds: every key figure
and name still there, no number that is not in the draft or the question. Otherwise, and when the
LLM fails, the template sentence is the reply: the figures were computed by SQL, so the answer
stands without the model. Long drafts (lists, breakdowns) are not sent to the model at all:
rewording ten figures costs ~10 s of generation on the local model and risks dropping one.

No crew calls it today: the pipeline and discovery crews reply with the computed answer's
template sentence, which states the same figures without an LLM call (the rewording cost one call
of about 300 prompt and 40 generated tokens, 3-6 s on 2 cores, per turn). It stays for a model fast
enough to word answers (a hosted one); `deps.word_answers` gates it. This crew answers no intent of
its own.
"""

from __future__ import annotations

import logging

from crews.analyst.models import PipelineReply
from crews.common import reply_is_grounded
from crews.deps import CrewDeps
from crews.runner import CrewOutputError, kickoff_validated
from guards.numbers import numbers_in
from tools.answers import Answer

log = logging.getLogger(__name__)

__all__ = ["PHRASE_MAX_CHARS", "PHRASE_MAX_NUMBERS", "PHRASE_MAX_TOKENS", "phrase", "worth_phrasing"]

#: Reply cap of the wording call (tokens): two sentences.
PHRASE_MAX_TOKENS = 120
#: Drafts longer than this (characters) or with more numbers are returned as they are.
PHRASE_MAX_CHARS = 260
PHRASE_MAX_NUMBERS = 5


def worth_phrasing(draft: str) -> bool:
    """Whether a draft is short enough for the model to reword safely."""
    return len(draft) <= PHRASE_MAX_CHARS and len(numbers_in(draft)) <= PHRASE_MAX_NUMBERS


async def phrase(deps: CrewDeps, question: str, answer: Answer) -> tuple[str, bool]:
    """(reply, phrased): the model's wording of `answer.draft` when it keeps the figures, else the
    draft itself (phrased False). No LLM call when `deps.word_answers` is off or the draft is
    long; a failed call is logged, never raised."""
    if not deps.word_answers or not worth_phrasing(answer.draft):
        return answer.draft, False
    from crews.analyst.crew import AnalystCrew

    try:
        run = await kickoff_validated(
            "pipeline",
            lambda llm: AnalystCrew(llm).crew(),
            {"question": question, "draft": answer.draft},
            PipelineReply,
            deps.llm,
            max_tokens=PHRASE_MAX_TOKENS,
        )
    except CrewOutputError as exc:
        log.info("pipeline wording failed (%s); using the computed sentence", exc.reason)
        return answer.draft, False
    reply = run.output.reply.strip()
    if reply_is_grounded(
        reply,
        required=answer.key_figures or [],
        allowed_from=[answer.draft, question],
        required_names=answer.names,
    ):
        return reply, True
    log.info("pipeline wording dropped or invented a figure; using the computed sentence: %r", reply)
    return answer.draft, False
