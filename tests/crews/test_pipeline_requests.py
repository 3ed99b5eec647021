"""Action requests through the pipeline crew on the real database (the small CRM of conftest),
no LLM call: reminders and tasks with dates counted from the rep's local day, a win with its
value and a loss with its reason proposed for the deal the words name, and a question back,
never a guess, when the deal or the date is not settled. Nothing is written before approval."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Engine, func, select

import crews.pipeline as pipeline
from contracts import CrewRequest, Entities
from crews import CrewDeps
from crm.db import session_scope
from crm.models import Deal, Event, Reminder
from crm.repository import create_deal
from crm.schemas import DealCreate
from tests.crews.conftest import CRM
from tests.support.stub_llm import StubLLM

TODAY = dt.date(2027, 3, 4)  # a Thursday


def _ask(message: str, ents: Entities | None = None) -> CrewRequest:
    return CrewRequest(message=message, intent="pipeline", entities=ents or Entities())


def _counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(Reminder)) or 0,
            s.scalar(select(func.count()).select_from(Event)) or 0,
            s.scalar(select(func.count()).select_from(Deal).where(Deal.stage == "won")) or 0,
        )


async def test_a_reminder_about_an_account_is_proposed_at_the_local_time_asked(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM, clean_db: Engine
) -> None:
    before = _counts(clean_db)
    deps = dataclasses.replace(deps, today=TODAY)
    response = await pipeline.run(
        _ask(
            "Remind me next Tuesday at 10 to send Gammaco the case study",
            crm_data.entities(("account", "Gammaco")),
        ),
        deps,
    )
    action = response.proposed_action
    assert action is not None and action.kind == "create_reminder", response.reply
    assert action.params["due_at"].startswith("2027-03-09T10:00")
    assert action.params["account_id"] == crm_data.account["Gammaco"]
    assert action.params["message"] == "Send Gammaco the case study"
    assert "Tue 09 Mar 2027 at 10:00" in response.reply
    assert stub.count == 0 and _counts(clean_db) == before


async def test_tasks_on_a_named_deal_each_keep_their_due_date(
    crm_data: CRM, deps: CrewDeps, clean_db: Engine
) -> None:
    deps = dataclasses.replace(deps, today=TODAY)
    message = (
        "Make two tasks for deal D0000005: send the pricing sheet by 2027-03-08 "
        "and call procurement by Friday"
    )
    response = await pipeline.run(_ask(message, crm_data.entities(("deal", "D0000005"))), deps)
    action = response.proposed_action
    assert action is not None and action.kind == "create_task", response.reply
    assert action.params["deal"] == "D0000005" and action.params["deal_id"] == crm_data.deal["D0000005"]
    assert action.params["tasks"] == [
        {"title": "Send the pricing sheet", "due": "2027-03-08"},
        {"title": "Call procurement", "due": "2027-03-05"},
    ]


async def test_a_win_names_its_value_and_a_loss_its_reason(
    crm_data: CRM, deps: CrewDeps, clean_db: Engine
) -> None:
    before = _counts(clean_db)
    # Betaco's only open deal is D0000005: the account names it
    won = await pipeline.run(
        _ask("We won Betaco! Mark it won at 4,250 dollars", crm_data.entities(("account", "Betaco"))), deps
    )
    action = won.proposed_action
    assert action is not None and action.kind == "move_stage", won.reply
    assert (action.params["deal"], action.params["stage"], action.params["value"]) == (
        "D0000005",
        "won",
        4250.0,
    )
    lost = await pipeline.run(
        _ask("Mark D0000006 as lost, they picked a cheaper vendor", crm_data.entities(("deal", "D0000006"))),
        deps,
    )
    action = lost.proposed_action
    assert action is not None and action.params["stage"] == "lost"
    assert action.params["note"] == "They picked a cheaper vendor"
    assert _counts(clean_db) == before  # proposed, not executed


async def test_an_account_with_several_open_deals_gets_a_question_not_a_guess(
    crm_data: CRM, deps: CrewDeps, clean_db: Engine
) -> None:
    with session_scope(clean_db) as s:
        create_deal(
            s,
            DealCreate(
                external_id="D0000009",
                account_id=crm_data.account["Betaco"],
                product_id=crm_data.product["MG Advanced"],
                rep_id=crm_data.rep["Bob Beta"],
                stage="engaging",
                engage_date=dt.date(2017, 6, 2),
            ),
        )
    response = await pipeline.run(
        _ask("Mark the Betaco deal as won", crm_data.entities(("account", "Betaco"))), deps
    )
    assert response.proposed_action is None
    assert "D0000005" in response.reply and "D0000009" in response.reply and response.reply.endswith("?")
    # naming the product settles it
    response = await pipeline.run(
        _ask(
            "Mark the Betaco MG Advanced deal as won, they signed for 3,100",
            crm_data.entities(("account", "Betaco"), ("product", "MG Advanced")),
        ),
        deps,
    )
    assert response.proposed_action is not None and response.proposed_action.params["deal"] == "D0000009"
    # a win without its value is asked for it, not proposed
    response = await pipeline.run(_ask("We won D0000009!", crm_data.entities(("deal", "D0000009"))), deps)
    assert response.proposed_action is None and "What value did deal D0000009" in response.reply


async def test_a_request_missing_its_record_or_date_is_asked_back(
    crm_data: CRM, deps: CrewDeps, clean_db: Engine
) -> None:
    deps = dataclasses.replace(deps, today=TODAY)
    for message, asked in (
        ("Set a reminder to call them", "Who is this about?"),
        ("Move the deal to negotiation", "Which deal should I move to Negotiation?"),
        ("Remind me about Gammaco", "When should I remind you?"),
        ("Remind me on 2027-03-01 to call Gammaco", "has already passed"),
    ):
        ents = crm_data.entities(("account", "Gammaco")) if "Gammaco" in message else Entities()
        if "negotiation" in message:
            ents = crm_data.entities(("stage", "negotiation"))
        response = await pipeline.run(_ask(message, ents), deps)
        assert response.proposed_action is None, message
        assert asked in response.reply, response.reply


async def test_a_deal_named_by_its_account_and_product_shows_its_record(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    ents = crm_data.entities(("account", "Gammaco"), ("product", "MG Advanced"))
    response = await pipeline.run(_ask("Show me the open MG Advanced deal with Gammaco", ents), deps)
    assert response.reply.startswith("Deal D0000006 with Gammaco for MG Advanced"), response.reply
    assert stub.count == 0
