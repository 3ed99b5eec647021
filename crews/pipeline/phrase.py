"""Word a computed answer with the pipeline crew, keeping its figures.

The crew (one agent, one task, JSON `PipelineReply`) rewrites the template sentence as a reply to
the question. The reply is kept only if `crews.common.reply_is_grounded` holds: every key figure
and name still there, no number that is not in the draft or the question. Otherwise, and when the
LLM fails, the template sentence is the reply: the figures were computed by SQL, so the answer
stands without the model. Long drafts (lists, breakdowns) are not sent to the model at all:
rewording ten figures costs ~10 s of generation on the local model and risks dropping one.
"""

from __future__ import annotations

import logging

from crews.common import CrewDeps, numbers_in, reply_is_grounded
from crews.pipeline.compute import Answer
from crews.pipeline.models import PipelineReply
from crews.runner import CrewOutputError, kickoff_validated

log = logging.getLogger(__name__)

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
    draft itself (phrased False)."""
    if not deps.word_answers or not worth_phrasing(answer.draft):
        return answer.draft, False
    from crews.pipeline.crew import PipelineCrew

    try:
        run = await kickoff_validated(
            "pipeline",
            lambda llm: PipelineCrew(llm).crew(),
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
