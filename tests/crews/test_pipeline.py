"""The pipeline crew on the real database (the small CRM of conftest) with a stub LLM: computed
figures stated by their template sentence without any LLM call, a follow-up planned from the
previous question, the LLM planner when no rule matches, stage moves proposed (never executed)
after the entry rules, and the analyst's optional wording kept only when it keeps the figures."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, func, select

import crews.pipeline as pipeline
from contracts import CrewRequest, Entities, Turn
from crews import CrewDeps
from crm.db import session_scope
from crm.models import Deal, Event
from tests.crews.conftest import CRM, echo_draft
from tests.support.stub_llm import StubLLM, requested_schema
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
    response = await pipeline.run(_ask(message, crm_data.entities(*refs, period=period)), deps)
    assert figure in response.reply
    assert response.facts and response.sources
    # the rules planned it, SQL computed it, the template states it: the model is not asked
    assert response.data["plan"]["source"] == "rules"
    assert response.llm_calls == 0 == stub.count
    assert response.proposed_action is None


async def test_a_computed_answer_is_its_template_sentence(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    ents = crm_data.entities(("rep", "Ann Alpha"))
    response = await pipeline.run(_ask("How many deals has Ann Alpha won?", ents), deps)
    assert response.reply == "There are 2 won deals for Ann Alpha."
    assert response.facts[0]["value"] == 2 and response.sources[0].id == "won"
    assert "phrased" not in response.data
    assert stub.count == 0


async def test_a_follow_up_takes_the_plan_of_the_previous_question(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    first = "What is Ann Alpha's win rate?"
    request = CrewRequest(
        message="and Bob Beta?",
        intent="pipeline",
        entities=crm_data.entities(("rep", "Bob Beta")),
        history=[Turn(role="user", content=first), Turn(role="assistant", content="66.7%")],
    )
    assert plan_from_rules(request.message, request.entities) is None
    response = await pipeline.run(request, deps)
    assert response.data["plan"]["source"] == "follow-up"
    assert response.data["plan"]["metric"] == "win_rate"
    assert "Bob Beta" in response.reply and stub.count == 0
    # a long message is not a follow-up: the planner is asked
    stub.answers = [json.dumps({"query": {"subject": "deal", "measure": "metric", "metric": "won_value"}})]
    long = request.model_copy(update={"message": "Give me the full lowdown on how Bob Beta is doing lately"})
    response = await pipeline.run(long, deps)
    assert response.data["query"]["metric"] == "won_value" and stub.count == 1
    assert "$4,500" in response.reply  # Bob Beta's won revenue


async def test_a_bare_count_follow_up_counts_the_previous_questions_deals(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    # Acme: GTX Pro won (D0000001); GTX Basic won (D0000002); MG Advanced lost (D0000003)
    request = CrewRequest(
        message="And how many MG Advanced?",
        intent="pipeline",
        entities=crm_data.entities(("account", "Acme"), ("product", "MG Advanced")),
        history=[
            Turn(role="user", content="How many GTX Pro deals has Acme signed with us?"),
            Turn(role="assistant", content="There is 1 won deal with Acme for GTX Pro."),
        ],
    )
    response = await pipeline.run(request, deps)
    assert response.data["plan"]["metric"] == "won", response.reply
    assert response.reply == "There are 0 won deals with Acme for MG Advanced."


async def test_the_analyst_wording_is_kept_only_when_it_keeps_the_figures(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    from crews.analyst import phrase
    from tools.answers import Answer

    answer = Answer("There are 2 won deals for Ann Alpha.")
    stub.answers = echo_draft
    assert await phrase(deps, "How many deals has Ann Alpha won?", answer) == (
        "Here you go: There are 2 won deals for Ann Alpha.",
        True,
    )
    stub.answers = [json.dumps({"reply": "Ann Alpha has won 7 deals."})]
    assert await phrase(deps, "How many deals has Ann Alpha won?", answer) == (answer.draft, False)
    calls = stub.count
    deps.word_answers = False
    assert await phrase(deps, "How many deals has Ann Alpha won?", answer) == (answer.draft, False)
    assert stub.count == calls  # switched off: not asked


async def test_unmatched_question_asks_the_planner_then_computes(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    message = "Give me the lowdown on Gammaco"
    ents = crm_data.entities(("account", "Gammaco"))
    assert plan_from_rules(message, ents) is None
    stub.answers = [json.dumps({"query": {"subject": "deal", "measure": "metric", "metric": "won_value"}})]
    response = await pipeline.run(_ask(message, ents), deps)
    assert stub.count == 1  # the planner only: the computed answer is not reworded
    assert response.data["query"]["where"] == [{"field": "account.name", "value": "Gammaco"}]
    assert "$4,800" in response.reply  # Gammaco's won revenue, computed
    # the planner's schema is the semantic layer's closed lists
    schema = json.dumps(requested_schema(stub.requests[-1]))
    assert "account.year_established" in schema and "win_rate" in schema


async def test_a_planned_query_that_makes_no_sense_is_asked_again_then_refused_honestly(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    senseless = json.dumps({"query": {"subject": "account", "measure": "avg", "field": "account.sector"}})
    stub.answers = [senseless, senseless]
    response = await pipeline.run(_ask("What is the typical colour of our accounts?", Entities()), deps)
    assert stub.count == 2 and "needs a numeric `field`" in json.dumps(stub.requests[-1])
    assert response.reply.startswith("I couldn't turn that into a question about the CRM")
    assert response.data["plan"] is None and response.data["query"] is None


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
    assert stub.count == calls == 0  # computed, not sent to the model
