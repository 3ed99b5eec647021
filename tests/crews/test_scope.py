"""The crews answer within the caller's reading, on the small CRM of `tests/tools/conftest.py`
with a stub LLM: Ann Alpha (rep, Acme's deals), Bob Beta (rep, Betaco's), their manager Mia
Manager, and Cy Gamma of another team (Gammaco's deals). Acme is Betaco's parent; Deltaco has
no deal (a prospect anyone may read).

Each test asks as a caller and checks what a wider caller would see is absent, and that the
same question from a caller who may read it is answered (so the refusal is the scope, not a
failure)."""

from __future__ import annotations

import json

import pytest

import crews.closing as closing
import crews.delivery as delivery
import crews.discovery as discovery
import crews.nba as nba
from contracts import CrewRequest, Entities
from contracts.identity import Caller
from crews import CrewDeps
from tests.crews.conftest import CRM
from tests.support.stub_llm import StubLLM


def _rep(crm: CRM, name: str, username: str) -> Caller:
    ids = frozenset({crm.rep[name]})
    return Caller(
        username=username,
        display_name=name,
        role="rep",
        rep_id=crm.rep[name],
        rep_name=name,
        read_rep_ids=ids,
        act_rep_ids=ids,
    )


def _mia(crm: CRM) -> Caller:
    team = frozenset({crm.rep["Ann Alpha"], crm.rep["Bob Beta"]})
    return Caller(
        username="mia",
        display_name="Mia Manager",
        role="manager",
        manager_name="Mia Manager",
        read_rep_ids=team,
        act_rep_ids=team,
    )


def _ask(message: str, ents: Entities, intent: str, caller: Caller | None) -> CrewRequest:
    return CrewRequest(message=message, intent=intent, entities=ents, caller=caller)  # type: ignore[arg-type]


@pytest.fixture
def ann(crm_data: CRM) -> Caller:
    return _rep(crm_data, "Ann Alpha", "ann")


@pytest.fixture
def bob(crm_data: CRM) -> Caller:
    return _rep(crm_data, "Bob Beta", "bob")


async def test_account_facts_keep_to_the_accounts_the_caller_reads(
    crm_data: CRM, deps: CrewDeps, ann: Caller, bob: Caller
) -> None:
    async def fact(question: str, ents: Entities, caller: Caller | None) -> str:
        r = await discovery.run(_ask(question, ents, "discovery", caller), deps)
        return r.reply

    gammaco = crm_data.entities(("account", "Gammaco"))
    assert "retail sector" in await fact("Which sector is Gammaco in?", gammaco, None)
    refused = await fact("Which sector is Gammaco in?", gammaco, ann)
    assert "not among the accounts you can see" in refused and "retail" not in refused
    deltaco = crm_data.entities(("account", "Deltaco"))
    assert "software" in await fact("Which sector is Deltaco in?", deltaco, ann)

    acme = crm_data.entities(("account", "Acme"))
    assert "Betaco" in await fact("Which accounts are subsidiaries of Acme?", acme, _mia(crm_data))
    mine = await fact("Which accounts are subsidiaries of Acme?", acme, ann)
    assert "Betaco" not in mine and "no subsidiaries you can see" in mine
    parent = await fact("What is the parent of Betaco?", crm_data.entities(("account", "Betaco")), bob)
    assert "Acme" not in parent and "an account you can't see" in parent

    retail = crm_data.entities(("sector", "retail"))
    listed = await fact("Which accounts are in the retail sector?", retail, _mia(crm_data))
    assert "Betaco" in listed and "Gammaco" not in listed
    assert "no accounts you can see" in await fact("Which accounts are in the retail sector?", retail, ann)

    contacts = await fact("Who are our contacts at Acme?", acme, bob)
    assert "Dana" not in contacts
    assert "Dana Diaz" in await fact("Who are our contacts at Acme?", acme, ann)


async def test_research_of_another_teams_account_is_refused(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM, ann: Caller
) -> None:
    stub.answers = [json.dumps({"summary": "Gammaco buys hardware.", "talking_points": []})]
    gammaco = crm_data.entities(("account", "Gammaco"))
    r = await discovery.run(_ask("Research Gammaco for me", gammaco, "discovery", ann), deps)
    assert "not among the accounts you can see" in r.reply and not r.sources
    assert stub.requests == []  # nothing of it reached the model


async def test_delivery_plans_only_the_callers_won_deals(crm_data: CRM, deps: CrewDeps, ann: Caller) -> None:
    named = crm_data.entities(("deal", "D0000008"))
    r = await delivery.run(_ask("Set up onboarding for D0000008", named, "delivery", ann), deps)
    assert r.proposed_action is None and "belongs to another team" in r.reply
    by_account = crm_data.entities(("account", "Gammaco"))
    r = await delivery.run(_ask("Onboarding plan for Gammaco", by_account, "delivery", ann), deps)
    assert r.proposed_action is None and "no won deal that you can see" in r.reply


async def test_next_best_actions_of_a_manager_cover_their_team_only(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM, ann: Caller
) -> None:
    stub.answers = [json.dumps({"summary": "Focus on the open deals."})] * 3
    everyone = await nba.run(_ask("What should we do next?", Entities(), "nba", None), deps)
    # Cy's open deals are among everyone's
    assert any(a["deal"] in ("D0000006", "D0000007") for a in everyone.data["actions"])

    team = await nba.run(_ask("What should we do next?", Entities(), "nba", _mia(crm_data)), deps)
    actions = team.data["actions"]
    assert actions and not {a["deal"] for a in actions} & {"D0000006", "D0000007", "D0000008"}
    assert {a["account"] for a in actions} <= {"Acme", "Betaco"}

    cy = crm_data.entities(("rep", "Cy Gamma"))
    r = await nba.run(_ask("What should Cy Gamma do next?", cy, "nba", _mia(crm_data)), deps)
    assert "outside the deals you can see" in r.reply and not r.data
    gammaco = crm_data.entities(("account", "Gammaco"))
    r = await nba.run(_ask("Next steps for Gammaco?", gammaco, "nba", ann), deps)
    assert "Gammaco is not among the accounts you can see" in r.reply and not r.data


async def test_no_draft_to_an_account_the_caller_cannot_see(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM, ann: Caller
) -> None:
    gammaco = crm_data.entities(("account", "Gammaco"))
    r = await closing.run(_ask("Draft a follow-up email to Gammaco", gammaco, "closing", ann), deps)
    assert "not among the accounts you can see" in r.reply and r.proposed_action is None
    assert stub.requests == []
