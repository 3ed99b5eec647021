"""The pipeline crew on the real database (the small CRM of conftest) with a stub LLM: computed
figures in the reply, the template when the model drops or invents a figure, the LLM planner
when no rule matches, and stage moves proposed (never executed) after the entry rules."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, func, select

import crews.pipeline as pipeline
from contracts import CrewRequest
from crews import CrewDeps
from crm.db import session_scope
from crm.models import Deal, Event
from tests.crews.conftest import CRM, echo_draft
from tests.support.stub_llm import StubLLM
from tools.query_plan import plan_from_rules


def _ask(message: str, ents) -> CrewRequest:  # type: ignore[no-untyped-def]
    return CrewRequest(message=message, intent="pipeline", entities=ents)


@pytest.mark.parametrize(
    ("message", "refs", "period", "figure"),
    [
        ("How many deals has Ann Alpha won?", [("rep", "Ann Alpha")], None, "2"),
        ("What is Ann Alpha's win rate on closed deals?", [("rep", "Ann Alpha")], None, "66.7%"),
        ("How much revenue have we won from Acme?", [("account", "Acme")], None, "$5,600"),
        ("What was the largest deal we won with Acme?", [("account", "Acme")], None, "$5,000"),
        ("Average won deal size for Ann Alpha?", [("rep", "Ann Alpha")], None, "$2,800"),
        (
            "On average how many days does Ann Alpha take to close a won deal?",
            [("rep", "Ann Alpha")],
            None,
            "25.0",
        ),
        ("How many open deals do we have with Betaco?", [("account", "Betaco")], None, "1"),
        ("What is the win rate of the West office?", [("office", "West")], None, "75.0%"),
        (
            "Who is the top sales agent by won revenue in the West office?",
            [("office", "West")],
            None,
            "Ann Alpha",
        ),
        ("Which product has the highest total won revenue?", [], None, "GTX Pro"),
        (
            "How many deals did we start engaging in March 2017?",
            [("stage", "engaging")],
            ("2017-03-01", "2017-04-01", "March 2017"),
            "2",
        ),
    ],
)
async def test_figures_are_computed_and_stated(
    crm_data: CRM,
    deps: CrewDeps,
    stub: StubLLM,
    message: str,
    refs,
    period,
    figure: str,  # type: ignore[no-untyped-def]
) -> None:
    stub.answers = echo_draft
    response = await pipeline.run(_ask(message, crm_data.entities(*refs, period=period)), deps)
    assert figure in response.reply
    assert response.reply.startswith("Here you go")  # the model's wording was kept: it kept the figure
    assert response.data["phrased"] is True
    assert response.facts and response.sources
    assert response.llm_calls == 1 == stub.count
    assert response.proposed_action is None


async def test_a_reply_that_drops_or_invents_a_figure_falls_back_to_the_computed_sentence(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    ents = crm_data.entities(("rep", "Ann Alpha"))
    stub.answers = [json.dumps({"reply": "Ann Alpha has won 7 deals."})]
    response = await pipeline.run(_ask("How many deals has Ann Alpha won?", ents), deps)
    assert response.reply == "There are 2 won deals for Ann Alpha."
    assert response.data["phrased"] is False
    stub.answers = [json.dumps({"reply": "The win rate for Ann Alpha is 66.7%, up 12% on last year."})]
    response = await pipeline.run(_ask("What is Ann Alpha's win rate?", ents), deps)
    assert "12" not in response.reply and "66.7%" in response.reply


async def test_unmatched_question_asks_the_planner_then_computes(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    message = "Give me the lowdown on Gammaco"
    ents = crm_data.entities(("account", "Gammaco"))
    assert plan_from_rules(message, ents) is None
    stub.answers = [
        json.dumps({"metric": "won_value", "group_by": "none", "rank": "none"}),
        json.dumps({"reply": "x"}),
    ]
    response = await pipeline.run(_ask(message, ents), deps)
    assert stub.count == 2  # the planner, then the analyst
    assert response.data["plan"]["source"] == "llm"
    assert "$4,800" in response.reply  # Gammaco's won revenue, computed


async def test_planner_failure_gives_a_summary_not_an_error(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    stub.answers = ["no json here"]
    response = await pipeline.run(
        _ask("Give me the lowdown on Gammaco", crm_data.entities(("account", "Gammaco"))), deps
    )
    assert response.data["plan"]["source"] == "default"
    assert "Pipeline with Gammaco: 2 deals" in response.reply  # D0000006 (open) and D0000008 (won)
    assert stub.count == 2  # the planner and its one retry; the summary is not reworded


def _snapshot(engine: Engine) -> tuple[list[tuple[str, str]], int]:
    with session_scope(engine) as s:
        stages = [(d.external_id, d.stage) for d in s.scalars(select(Deal).order_by(Deal.id))]
        events = s.scalar(select(func.count()).select_from(Event)) or 0
    return stages, events


async def test_stage_move_is_checked_and_proposed_but_not_executed(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM, clean_db: Engine
) -> None:
    before = _snapshot(clean_db)
    ents = crm_data.entities(("deal", "D0000005"), ("stage", "negotiation"))
    response = await pipeline.run(_ask("Move deal D0000005 to negotiation", ents), deps)
    action = response.proposed_action
    assert action is not None and action.kind == "move_stage"
    assert action.params["deal"] == "D0000005"
    assert action.params["deal_id"] == crm_data.deal["D0000005"]
    assert action.params["stage"] == "negotiation"
    assert "Engaging" in response.reply and "Negotiation" in response.reply
    assert stub.count == 0 and response.llm_calls == 0  # nothing to word: no LLM call
    assert _snapshot(clean_db) == before  # the dry run left no change and no event


async def test_stage_move_breaking_a_rule_is_explained_not_proposed(
    crm_data: CRM, deps: CrewDeps, clean_db: Engine
) -> None:
    before = _snapshot(clean_db)
    # D0000007 has no account: Proposal requires account, product and engage date
    ents = crm_data.entities(("deal", "D0000007"), ("stage", "proposal"))
    response = await pipeline.run(_ask("push D0000007 into proposal", ents), deps)
    assert response.proposed_action is None
    assert "can't move" in response.reply and "account" in response.reply
    # a closed deal is not reopened by a chat request either
    ents = crm_data.entities(("deal", "D0000001"), ("stage", "negotiation"))
    response = await pipeline.run(_ask("Move deal D0000001 to negotiation", ents), deps)
    assert response.proposed_action is None and "closed" in response.reply
    assert _snapshot(clean_db) == before


async def test_stuck_deals_and_forecast_are_computed(crm_data: CRM, deps: CrewDeps, stub: StubLLM) -> None:
    response = await pipeline.run(
        _ask(
            "Which deals have been stuck in engaging for more than 60 days?",
            crm_data.entities(("stage", "engaging")),
        ),
        deps,
    )
    # reference date 2017-06-09: D0000006 engaged 2017-03-15 (86 days); D0000005 only 8 days
    assert "D0000006" in response.reply and "D0000005" not in response.reply
    assert "86 days" in response.reply
    calls = stub.count
    response = await pipeline.run(
        _ask("Forecast how much we will close next month", crm_data.entities()), deps
    )
    # open: D5 GTX Basic $550 x 25%, D6 MG Advanced $3,393 x 25%, D7 GTX Basic $550 x 10%
    expected = 550 * 0.25 + 3393 * 0.25 + 550 * 0.10
    assert f"${expected:,.2f}" in response.reply
    assert stub.count == calls  # a long computed answer (per-stage figures) is not sent to the model


async def test_wording_can_be_switched_off(crm_data: CRM, clean_db: Engine, stub: StubLLM) -> None:
    from tests.crews.conftest import deps_for

    deps = deps_for(clean_db, stub)
    deps.word_answers = False
    response = await pipeline.run(
        _ask("How many deals has Ann Alpha won?", crm_data.entities(("rep", "Ann Alpha"))), deps
    )
    assert response.reply == "There are 2 won deals for Ann Alpha."
    assert stub.count == 0 and response.llm_calls == 0
