"""The guards' check of a crew's response, as every caller runs it: the chat graph after each
crew turn, and the workflows after each draft they file for approval."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contracts import CrewRequest, CrewResponse, GuardOutcome

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tools.guard_facts import GuardFacts


def check_response(
    request: CrewRequest,
    response: CrewResponse,
    facts: GuardFacts,
    attempt: int,
    output_model: type[BaseModel] | None,
) -> GuardOutcome:
    """`guards.check_reply` on `response` with the CRM `facts` of the request (name index, allowed
    personal data, list price) and the crew's `output_model` for the schema check; `attempt`: 0
    for the crew's first answer, n after the n-th re-ask. Loads Guardrails on first use (~3 s)."""
    from guards import GuardContext, check_reply

    context = GuardContext(
        intent=request.intent,
        message=request.message,
        known_names=facts.index,
        allowed_pii=facts.allowed_pii,
        attempt=attempt,
        output_model=output_model,
        list_price=facts.list_price,
    )
    outcome: GuardOutcome = check_reply(response, context)
    return outcome
