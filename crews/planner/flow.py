"""The query planner over the whole CRM, shared by the crews that answer data questions
(pipeline, discovery): one LLM call fills a `tools.semantic_plan.SemanticPlan` (JSON constrained
to the semantic layer's closed lists, re-asked once with the reason when it makes no question),
the tools complete it with the resolved records and the question's own words, SQL computes it and
a template words it (`tools.semantic_answers`). It answers no intent of its own."""

from __future__ import annotations

import logging

from contracts import CrewRequest, Entities
from crews.common import in_session, question_of
from crews.deps import CrewDeps
from crews.runner import CrewOutputError, kickoff_validated
from tools.answers import Answer
from tools.errors import DomainError
from tools.semantic_answers import SemanticPlan, describe, semantic_answer

log = logging.getLogger(__name__)

__all__ = ["PLAN_MAX_TOKENS", "answer_over_crm"]


#: Reply cap of the planner (tokens): a query of the semantic layer is 30 to 120 tokens of JSON.
PLAN_MAX_TOKENS = 160


def _named(entities: Entities) -> str:
    """The records the resolver found, as the planner's prompt lists them: "(named: sector
    retail, account Acme, period March 2017)"; empty when none."""
    parts = [f"{e.kind} {e.key}" for e in entities.items if e.kind != "contact"]
    if entities.period is not None:
        parts.append(f"period {entities.period.label}")
    return f"(named: {', '.join(parts)})" if parts else ""


async def answer_over_crm(
    deps: CrewDeps, request: CrewRequest, rep_ids: frozenset[int] | None
) -> Answer | None:
    """The answer through the semantic layer: the planner (one LLM call, JSON constrained to
    `SemanticPlan`, retried once with the reason when its query makes no sense) fills the
    query, SQL computes it. None when the planner fails or the query cannot run."""
    from crews.planner.crew import QueryPlanCrew

    inputs = {"question": question_of(request), "layer": describe(), "named": _named(request.entities)}
    try:
        run = await kickoff_validated(
            "query-plan",
            lambda llm: QueryPlanCrew(llm).crew(),
            inputs,
            SemanticPlan,
            deps.llm,
            max_tokens=PLAN_MAX_TOKENS,
        )
    except CrewOutputError as exc:
        log.info("query planner failed (%s)", exc.reason)
        return None
    choice = run.output.choice()
    try:
        return await in_session(
            deps, lambda s: semantic_answer(s, choice, request.entities, request.message, rep_ids=rep_ids)
        )
    except (ValueError, DomainError) as exc:
        log.info("semantic query not run: %s", exc)
        return None
