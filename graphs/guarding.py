"""The guards' side of the graph: every crew response checked by `guards.check_reply` against
facts read from the CRM (`tools.guard_facts`), and the pieces the guard node (`graphs.nodes.guard`)
builds its decision from.

    outcome = check_with(request, response, facts, attempt)     # contracts.GuardOutcome

(`graphs.adapters.CrmGuard` reads the facts from the CRM and calls :func:`check_with`.)

How a turn is guarded (the loop is the graph's: guard -> crew -> guard, see `graphs.graph`):

1. `check_reply` decides pass | fixed | reask | refuse (config/guards.yaml), with
   `GuardContext.attempt` = how many times the crew was re-asked already (a failure that would
   re-ask once `max_reasks` is spent gives the safe reply).
2. On "reask" the crew node runs again with `CrewRequest.feedback` = the guards' explanation, and
   the guard checks its answer with the next attempt number; at most `MAX_ATTEMPTS` crew runs
   per turn whatever `max_reasks` says. If a re-asked run fails outright, the failures that asked
   for it are recorded as refused (:func:`refused_after_failed_reask`) and the safe reply of the
   first answer is shown (:func:`safe_response`).
3. The verdicts of every attempt (`contracts.Verdict` as dicts, plus `attempt`) go to the graph
   state; the chat service turns them into Langfuse scores and Prometheus counts
   (`observability.turn`). When any verdict failed, one Event `guard.verdicts` is written
   (:func:`verdicts_event`: intent, decision, attempts, verdicts; account/deal of the turn as
   foreign keys): turns that passed every check leave no row, so the event log holds what a
   reviewer must look at.

Streamed replies (`graphs.streaming`) are also checked sentence by sentence while the crew writes
them: :func:`sentence_guard_loader` builds the crew node's `guards.sentences.SentenceGuard` from the
same CRM facts (`tools.guard_facts.gather` for the crew's facts and sources), and a sentence that
fails stops the crew; the guard node then decides on those failures (:func:`stream_outcome`: reask
while re-asks are left, else refuse) with the same re-ask note and safe reply as above.

Fail closed: an error in gathering or checking propagates, and the guard node then blocks the
reply. A failure to write the Event is logged and the turn goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from contracts import INTENTS, ActionMeta, CrewRequest, CrewResponse, GuardOutcome, Source, Verdict
from crews.checks import check_response
from crews.registry import output_model as crew_output_model
from graphs.canned import GeneralReply

if TYPE_CHECKING:
    from pydantic import BaseModel

    from graphs.context import ChatContext
    from guards.sentences import SentenceGuard
    from tools.guard_facts import GuardFacts

#: Event kind of a turn whose guards found something.
EVENT_KIND = "guard.verdicts"

#: Most crew runs per turn whatever `max_reasks` says (the first answer + re-asks).
MAX_ATTEMPTS = 4


def output_model(intent: str) -> type[BaseModel] | None:
    """The pydantic model of `intent`'s `CrewResponse.data`: its crew's output model
    (`crews.registry.output_model`), the canned replies' GeneralReply for "general"; None for an
    unknown intent."""
    if intent == "general":
        return GeneralReply
    if intent not in INTENTS:
        return None
    return crew_output_model(intent)


def output_models() -> list[type[BaseModel]]:
    """The output model of every intent (what the schema validator may be asked to check)."""
    return [m for m in (output_model(i) for i in INTENTS) if m is not None]


def check_with(request: CrewRequest, response: CrewResponse, facts: GuardFacts, attempt: int) -> GuardOutcome:
    """`crews.checks.check_response` with the output model of the request's intent (the canned
    replies' for "general"); `attempt`: 0 for the crew's first answer, n after the n-th re-ask."""
    return check_response(request, response, facts, attempt, output_model(request.intent))


def sentence_guard_loader(
    ctx: ChatContext, request: CrewRequest, attempt: int
) -> Callable[[list[Mapping[str, Any]], list[Source]], SentenceGuard] | None:
    """What builds the sentence guard of a streamed reply (`graphs.streaming.GuardLoader`), or
    None when the graph does not guard replies (`ctx.guard` None) or has no CRM to read its facts
    from (`ctx.engine` None). The loader reads the facts the whole-reply guard will read
    (`tools.guard_facts.gather`: the name index, the personal data of the records in the crew's
    sources and the turn's entities, the list price) in one transaction: blocking."""
    engine = ctx.engine
    if ctx.guard is None or engine is None:
        return None

    def load(facts: list[Mapping[str, Any]], sources: list[Source]) -> SentenceGuard:
        from crm.db import session_scope
        from guards.sentences import SentenceGuard
        from tools.guard_facts import gather

        partial = CrewResponse(reply="", facts=[dict(f) for f in facts], sources=sources)
        with session_scope(engine) as session:
            found = gather(session, request, partial)
        guard = SentenceGuard.for_intent(
            request.intent,
            message=request.message,
            known_names=found.index,
            allowed_pii=found.allowed_pii,
            list_price=found.list_price,
            attempt=attempt,
        )
        return guard.grounded_in([*facts, *(s.model_dump() for s in sources)])

    return load


def stream_outcome(failures: Sequence[Verdict]) -> tuple[str, str | None]:
    """The guard's decision on a crew run stopped by the sentence guards' `failures`:
    ("reask", the re-ask note for the crew) while every failure may be re-asked, else
    ("refuse", None): the safe reply (:func:`safe_response`)."""
    from guards import load_guards_config, reask_instructions
    from guards.config import max_discount_percent

    if any(v.action == "refused" for v in failures):
        return "refuse", None
    return "reask", reask_instructions(failures, max_percent=max_discount_percent(load_guards_config()))


# --------------------------------------------------------------------------------------------
# the guard node's decision, piece by piece
# --------------------------------------------------------------------------------------------


def tagged(verdicts: Iterable[Verdict], attempt: int) -> list[dict[str, Any]]:
    """`verdicts` as JSON-able dicts with the `attempt` they were given at."""
    return [{**v.model_dump(), "attempt": attempt} for v in verdicts]


def failures_at(verdicts: Iterable[dict[str, Any]], attempt: int) -> list[Verdict]:
    """The failed verdicts of `attempt` among tagged ones (:func:`tagged`), as models."""
    return [Verdict.model_validate(v) for v in verdicts if v.get("attempt") == attempt and not v["passed"]]


def safe_response(response: CrewResponse, failures: list[Verdict]) -> CrewResponse:
    """`response` with the guards' safe reply for `failures` and no proposed action."""
    from guards import safe_reply

    return response.model_copy(update={"reply": safe_reply(failures), "proposed_action": None})


def refused_after_failed_reask(failures: list[Verdict], attempt: int, error: str) -> list[dict[str, Any]]:
    """The failures that asked for a re-ask, again, as refused at the attempt that never came
    (`error`: the class name of the re-asked crew's exception)."""
    out = []
    for v in failures:
        if v.action != "reask":
            continue
        note = f"{v.message} (the re-asked crew failed: {error})".strip()
        out.append({**v.model_dump(), "action": "refused", "message": note, "attempt": attempt})
    return out


def verdicts_event(
    request: CrewRequest, decision: str, attempts: int, verdicts: list[dict[str, Any]]
) -> tuple[dict[str, Any], ActionMeta]:
    """(payload, meta) of the turn's `guard.verdicts` Event: intent, decision, crew runs
    (`attempts`) and tagged verdicts, with the turn's account and deal ids as foreign keys."""
    account = request.entities.first("account")
    deal = request.entities.first("deal")
    payload: dict[str, Any] = {
        "intent": request.intent,
        "decision": decision,
        "attempts": attempts,
        "verdicts": verdicts,
    }
    if account is not None and account.id is not None:
        payload["account_id"] = account.id
    if deal is not None and deal.id is not None:
        payload["deal_id"] = deal.id
    return payload, ActionMeta(actor=request.user_id, thread_id=request.thread_id, decision=decision)
