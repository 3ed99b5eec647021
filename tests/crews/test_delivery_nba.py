"""The delivery and nba crews with a stub LLM on the small CRM (the general intent's canned
replies are a graph node: tests/graphs/test_canned.py)."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Engine, func, select

import crews.delivery as delivery
import crews.nba as nba
from contracts import CrewRequest, Entities
from crews import CrewDeps
from crm.db import session_scope
from crm.models import Event, Recommendation
from tests.crews.conftest import CRM
from tests.support.stub_llm import StubLLM


def _ask(message: str, ents: Entities, intent: str) -> CrewRequest:
    return CrewRequest(message=message, intent=intent, entities=ents)  # type: ignore[arg-type]


async def test_onboarding_plan_dates_come_from_the_close_date(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    stub.answers = [
        json.dumps({"summary": "A smooth start. Training takes 2 weeks.", "risks": ["Site access"]})
    ]
    r = await delivery.run(
        _ask(
            "We just won the Gammaco deal, set up the onboarding project",
            crm_data.entities(("account", "Gammaco")),
            "delivery",
        ),
        deps,
    )
    plan = r.data["plan"]
    assert plan["deal"] == "D0000008" and plan["close_date"] == "2017-06-09"
    dues = [m["due"] for m in plan["milestones"]]
    close = dt.date(2017, 6, 9)
    assert dues == [(close + dt.timedelta(days=d)).isoformat() for d in (3, 14, 21, 30, 45)]
    assert plan["milestones"][0]["owner"] == "Cy Gamma"
    assert "A smooth start." in r.reply and "2 weeks" not in r.reply  # model prose without figures
    assert "Site access" in r.reply
    action = r.proposed_action
    assert action is not None and action.kind == "create_task"
    assert len(action.params["tasks"]) == sum(len(m["tasks"]) for m in plan["milestones"])
    assert action.params["deal_id"] == crm_data.deal["D0000008"]


async def test_status_report_and_not_won(crm_data: CRM, deps: CrewDeps, stub: StubLLM) -> None:
    r = await delivery.run(
        _ask(
            "Create a status report for Acme on their GTX Basic installation",
            crm_data.entities(("account", "Acme"), ("product", "GTX Basic")),
            "delivery",
        ),
        deps,
    )
    # D0000002 closed 2017-03-21; reference date 2017-06-09: every milestone has passed
    assert r.data["plan"]["deal"] == "D0000002"
    assert all(m["status"] == "done" for m in r.data["plan"]["milestones"])
    r = await delivery.run(
        _ask("Set up onboarding for D0000005", crm_data.entities(("deal", "D0000005")), "delivery"), deps
    )
    assert r.proposed_action is None and "not won" in r.reply


async def test_next_best_actions_are_ranked_stored_and_reminded(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM, clean_db: Engine
) -> None:
    stub.answers = [json.dumps({"summary": "Start with Gammaco: it has waited longest."})]
    r = await nba.run(
        _ask("What should I do next with Gammaco?", crm_data.entities(("account", "Gammaco")), "nba"), deps
    )
    actions = r.data["actions"]
    assert actions and actions[0]["deal"] == "D0000006"  # 86 days in Engaging at the reference date
    assert "86 days" in actions[0]["reason"]
    assert "Start with Gammaco" in r.reply
    with session_scope(clean_db) as s:
        stored = s.scalars(select(Recommendation).order_by(Recommendation.priority.desc())).all()
        events = s.scalar(select(func.count()).select_from(Event).where(Event.kind == "nba.recommended"))
    assert [x.id for x in stored][: len(actions)] == [a["recommendation_id"] for a in actions]
    assert stored[0].sources["deal"] == "D0000006" and events == 1
    action = r.proposed_action
    assert action is not None and action.kind == "create_reminder"
    assert action.params["deal_id"] == crm_data.deal["D0000006"]


async def test_upsell_question_leads_with_the_cross_sell(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    r = await nba.run(
        _ask("Is there an upsell opportunity with Acme?", crm_data.entities(("account", "Acme")), "nba"), deps
    )
    first = r.data["actions"][0]
    assert first["kind"] == "upsell" and "MG Advanced" in first["action"]  # the product Acme never won
