"""Counts a crew derives from a list or a ranking ("compared across 3 products", "and 3 more",
"the 2 products with ...", the inline ranks "1. GTX Pro: ...; 2. ...") are in its facts: the
grounding guard shows a reply only when every number in it is found in `CrewResponse.facts` or the
rep's message, read with the guard's own number extraction (`guards.numbers`)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

import crews.discovery as discovery
import crews.pipeline as pipeline
from contracts import CrewRequest, CrewResponse, Entities, Intent
from crews import CrewDeps
from crm.db import session_scope
from crm.repository import create_account
from crm.schemas import AccountCreate
from guards.numbers import FactSet, extract_numbers
from tests.crews.conftest import CRM

#: Accounts added in their own sector: more than the 12 names a sector answer lists and the 10
#: accounts a prospect list shows.
SERVICES = 15


def ungrounded(reply: str, facts: list[dict[str, Any]], message: str) -> list[str]:
    """The figures of `reply` that neither the facts nor the message hold (no allowance for list
    sizes: a count must be a fact)."""
    allowed = FactSet.from_facts([*facts, message])
    return [n.raw for n in extract_numbers(reply) if not allowed.supports(n)]


async def _run(intent: Intent, message: str, ents: Entities, deps: CrewDeps) -> CrewResponse:
    request = CrewRequest(message=message, intent=intent, entities=ents)
    # the stub LLM's minimal JSON is no wording of the draft: the reply is the computed sentence
    if intent == "pipeline":
        return await pipeline.run(request, deps)
    return await discovery.run(request, deps)


@pytest.fixture
def services(clean_db: Engine, crm_data: CRM) -> CRM:
    with session_scope(clean_db) as s:
        for i in range(SERVICES):
            create_account(
                s, AccountCreate(name=f"Svc{chr(65 + i)} Ltd", sector="services", employees=200 + i)
            )
    return crm_data


@pytest.mark.parametrize(
    ("message", "refs", "written"),
    [
        ("Which product has the highest total won revenue?", [], "Compared across 3 products"),
        (
            "Who is the top sales agent by won revenue in the West office?",
            [("office", "West")],
            "Compared across 2 sales reps",
        ),
        ("What are the top 2 products by won revenue?", [], "The 2 products with the highest"),
        ("Won revenue by product", [], "1. GTX Pro: $14,300; 2. "),
    ],
)
async def test_ranking_counts_are_facts(
    crm_data: CRM, deps: CrewDeps, message: str, refs: list[tuple[str, str]], written: str
) -> None:
    r = await _run("pipeline", message, crm_data.entities(*refs), deps)
    assert written in r.reply
    assert ungrounded(r.reply, r.facts, message) == []


@pytest.mark.parametrize("intent", ["discovery", "pipeline"])
@pytest.mark.parametrize(
    "message", ["How many accounts are in the services sector?", "Which accounts are in the services sector?"]
)
async def test_and_n_more_is_a_fact(services: CRM, deps: CrewDeps, intent: Intent, message: str) -> None:
    r = await _run(intent, message, services.entities(("sector", "services")), deps)
    assert f"{SERVICES} accounts" in r.reply and f"and {SERVICES - 12} more" in r.reply
    assert ungrounded(r.reply, r.facts, message) == []


async def test_prospect_count_beyond_the_listed_ten_is_a_fact(services: CRM, deps: CrewDeps) -> None:
    message = "Which services accounts with more than 100 employees haven't we sold to?"
    r = await _run("discovery", message, services.entities(("sector", "services")), deps)
    assert r.reply.startswith(f"{SERVICES} accounts in the services sector")
    assert ungrounded(r.reply, r.facts, message) == []
