"""The discovery crew with a stub LLM: factual answers from the CRM, BANT qualification with a
computed score, lead ranking without the model, and a briefing whose model prose carries no
invented figure."""

from __future__ import annotations

import json

from sqlalchemy import event

from contracts import CrewRequest, Entities
from crews import CrewDeps
from crews.discovery import run
from crews.discovery.models import BantAssessment
from crews.discovery.scoring import lead_score, merge_bant
from tests.crews.conftest import CRM
from tests.crews.test_reply_numbers import ungrounded
from tests.support.stub_llm import StubLLM


def _ask(message: str, ents: Entities, user: str | None = None) -> CrewRequest:
    return CrewRequest(message=message, intent="discovery", entities=ents, user_id=user)


async def test_factual_questions(crm_data: CRM, deps: CrewDeps, stub: StubLLM) -> None:
    r = await run(
        _ask("How many accounts are in the retail sector?", crm_data.entities(("sector", "retail"))), deps
    )
    assert "2 accounts" in r.reply and "Betaco" in r.reply and "Gammaco" in r.reply
    r = await run(
        _ask("Which accounts are subsidiaries of Acme?", crm_data.entities(("account", "Acme"))), deps
    )
    assert "Betaco" in r.reply
    r = await run(_ask("Which sector is Gammaco in?", crm_data.entities(("account", "Gammaco"))), deps)
    assert "retail" in r.reply
    r = await run(_ask("Who is Bob Beta's manager?", crm_data.entities(("rep", "Bob Beta"))), deps)
    assert "Mia Manager" in r.reply
    assert r.data["kind"] == "fact"
    # a deal figure asked here is computed like the pipeline does
    r = await run(
        _ask("How much revenue have we won from Acme?", crm_data.entities(("account", "Acme"))), deps
    )
    assert "$5,600" in r.reply and r.data["kind"] == "pipeline_fact"
    # facts and figures from the CRM are stated by their template sentence: no LLM call
    assert stub.count == 0 and r.llm_calls == 0


async def test_a_fact_is_its_template_sentence(crm_data: CRM, deps: CrewDeps, stub: StubLLM) -> None:
    stub.answers = [json.dumps({"reply": "Acme has no subsidiaries."})]  # never asked
    r = await run(
        _ask("Which accounts are subsidiaries of Acme?", crm_data.entities(("account", "Acme"))), deps
    )
    assert r.reply == "Acme has 1 subsidiary: Betaco."
    assert r.sources and r.facts[0]["subsidiaries"] == ["Betaco"]
    assert stub.count == 0


def test_bant_rules_and_score_arithmetic() -> None:
    text = "Priya Shah, VP Ops at Northwind, 400 employees, asked about pricing, no budget until next year"
    bant = merge_bant(BantAssessment(budget="yes", need="unknown"), text)
    assert bant.authority == "yes" and bant.need == "yes" and bant.budget == "no"
    score = lead_score(bant, text, None)
    # authority 20 + need 20 + budget 0 + timeline (the model said unknown; "until next year" = no) 0
    assert bant.timeline == "no"
    assert score.score == 40
    assert len(score.reasons) == 4
    fit = lead_score(bant, text, {"name": "Acme", "employees": 2822, "won_deals": 2, "open_deals": 1})
    assert fit.score == 40 + 10 + 5 + 5


async def test_qualification_uses_one_llm_call_and_a_computed_score(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    stub.answers = [
        json.dumps(
            {
                "budget": "unknown",
                "budget_evidence": "",
                "authority": "unknown",
                "authority_evidence": "",
                "need": "unknown",
                "need_evidence": "",
                "timeline": "yes",
                "timeline_evidence": "this quarter",
                "next_step": "Book a discovery call to confirm the budget.",
            }
        )
    ]
    r = await run(
        _ask(
            "Qualify this lead: the CTO of Acme has budget approved for this quarter",
            crm_data.entities(("account", "Acme")),
        ),
        deps,
    )
    assert stub.count == 1 and r.llm_calls == 1
    # budget yes 20 + authority yes (CTO) 20 + need unknown 8 + timeline yes 20 = 68;
    # fit: Acme bought before +10, 2,822 employees +5, no open deal with Acme
    assert r.data["lead_score"]["score"] == 68 + 10 + 5
    assert r.reply.startswith("Lead score: 83/100.")
    assert "Next step: Book a discovery call" in r.reply
    # every figure the reply prints (score, each criterion's points, fit points) is in the facts,
    # so the grounding guard lets a correct qualification through
    assert ungrounded(r.reply, r.facts, "") == []


async def test_lead_ranking_needs_no_llm(crm_data: CRM, deps: CrewDeps, stub: StubLLM) -> None:
    r = await run(_ask("Score our open deals and tell me which leads look strongest", Entities()), deps)
    assert stub.count == 0
    leads = r.data["leads"]
    assert [lead["deal"] for lead in leads][:1] == ["D0000006"]  # Gammaco: a past win, 1,500 staff
    assert leads[0]["score"] >= leads[-1]["score"]


async def test_briefing_prose_never_carries_a_figure(crm_data: CRM, deps: CrewDeps, stub: StubLLM) -> None:
    stub.answers = [
        json.dumps(
            {
                "summary": "Acme is a technology company. We won over $1 million from them last year.",
                "talking_points": ["Ask about their GTX Pro rollout", "They grew 40% this year"],
            }
        )
    ]
    r = await run(_ask("What do we know about Acme?", crm_data.entities(("account", "Acme"))), deps)
    assert "Acme is a technology company." in r.reply
    assert "million from them" not in r.reply and "40%" not in r.reply
    assert "Ask about their GTX Pro rollout" in r.reply
    # figures come from the records: 3 deals, 2 won worth $5,600, contact Dana Diaz
    assert "3 deals" in r.reply and "$5,600" in r.reply and "Dana Diaz" in r.reply
    assert r.data["kind"] == "research"


async def test_a_derived_entity_does_not_hide_the_question_words(crm_data: CRM, deps: CrewDeps) -> None:
    # the resolver adds the manager of "Bob Beta's manager" with that phrase as its mention
    ents = crm_data.entities(("rep", "Bob Beta"))
    ents.items.append(crm_data.ref("manager", "Mia Manager", mention="Bob Beta's manager"))
    r = await run(_ask("Who is Bob Beta's manager?", ents), deps)
    assert "Mia Manager" in r.reply and r.data["kind"] == "fact"


async def test_a_briefing_reads_the_crm_in_one_transaction(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    """The fact check, the deal-figure check and the briefing's records share one pooled
    connection (one worker-thread hop and one transaction before the model call)."""
    stub.answers = [json.dumps({"summary": "Acme buys GTX systems.", "talking_points": []})]
    checkouts: list[object] = []

    def count(*_args: object) -> None:
        checkouts.append(object())

    assert deps.engine is not None
    event.listen(deps.engine.pool, "checkout", count)
    try:
        r = await run(_ask("Brief me on Acme", crm_data.entities(("account", "Acme"))), deps)
    finally:
        event.remove(deps.engine.pool, "checkout", count)
    assert r.data["kind"] == "research" and "Acme buys GTX systems." in r.reply
    assert "3 deals" in r.reply  # the records were read
    assert len(checkouts) == 1


async def test_a_briefing_on_an_account_out_of_reach_shows_nothing(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    ents = crm_data.entities(("account", "Acme"))
    ents.items[0] = ents.items[0].model_copy(update={"id": 10**9})  # gone since it was resolved
    r = await run(_ask("Brief me on Acme", ents), deps)
    assert "not among the accounts you can see" in r.reply
    assert r.data["account"] is None and stub.count == 0
