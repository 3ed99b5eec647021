"""Drafting a follow-up email for a workflow: the closing crew writes it from the deal's history,
and the guards check it exactly as they check a chat reply (one re-ask when they ask for it). A
draft the guards refuse, or that the model could not write, is not filed as a draft."""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel
from sqlalchemy import Engine

from contracts import CrewRequest, CrewResponse, Entities, EntityRef, GuardOutcome, ProposedAction
from crews.deps import CrewDeps
from crm.db import session_scope
from llm import LLMConfig
from tools.deals import DealOut
from tools.guard_facts import gather

log = logging.getLogger(__name__)


class Draft(BaseModel):
    """A checked draft: `action` is the `queue_email` to approve (None when there is no draft, and
    `problem` says why); `text` is the crew's reply (the email as the rep will see it)."""

    action: ProposedAction | None = None
    text: str = ""
    problem: str | None = None


def request_for(deal: DealOut, brief: str) -> CrewRequest:
    """The closing crew's request for a follow-up email on `deal`, for the purpose `brief`."""
    who = deal.account_name or "the client"
    what = f" about {deal.product_name}" if deal.product_name else ""
    items = [EntityRef(kind="deal", key=deal.external_id, id=deal.id, mention=deal.external_id)]
    if deal.account_id is not None and deal.account_name:
        items.append(
            EntityRef(kind="account", key=deal.account_name, id=deal.account_id, mention=deal.account_name)
        )
    message = f"Draft a follow-up email to {who}{what} for deal {deal.external_id}: {brief}"
    return CrewRequest(
        message=message, intent="closing", user_id=deal.rep_name, entities=Entities(items=items)
    )


def _check(engine: Engine, request: CrewRequest, response: CrewResponse, attempt: int) -> GuardOutcome:
    # the crews' registry and Guardrails load in seconds: only a worker that drafts pays for them
    from crews.checks import check_response
    from crews.registry import output_model

    with session_scope(engine) as session:
        facts = gather(session, request, response)
    return check_response(request, response, facts, attempt, output_model(request.intent))


async def draft_email(engine: Engine, llm: LLMConfig, deal: DealOut, brief: str) -> Draft:
    """The closing crew's follow-up email for `deal`, checked by the guards. Never raises for the
    model or the guards failing: the Draft then has no action and says why."""
    from crews.registry import run_crew

    request = request_for(deal, brief)
    deps = CrewDeps(engine=engine, llm=llm, word_answers=True)
    try:
        response = await run_crew(request, deps)
        outcome = await asyncio.to_thread(_check, engine, request, response, 0)
        if outcome.needs_reask:
            again = request.model_copy(update={"feedback": outcome.reask_instructions})
            response = await run_crew(again, deps)
            outcome = await asyncio.to_thread(_check, engine, again, response, 1)
    except Exception as exc:  # the model or the guards failed: no draft, and why
        log.warning("no draft for deal %s: %r", deal.external_id, exc)
        return Draft(problem=f"the draft could not be written ({type(exc).__name__})")
    if outcome.decision not in ("pass", "fixed"):
        return Draft(text=outcome.response.reply, problem="the guards refused the draft")
    action = outcome.response.proposed_action
    if action is None or action.kind != "queue_email":
        return Draft(text=outcome.response.reply, problem="the crew proposed no email")
    return Draft(action=action, text=outcome.response.reply)
