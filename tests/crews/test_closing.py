"""The closing crew with a stub LLM: discounts never granted above the policy's maximum, the
figures and the CAN-SPAM footer added by the crew, and the proposed actions."""

from __future__ import annotations

import json

import pytest

from config.files import load_policies
from contracts import CrewRequest, Entities
from crews import CrewDeps
from crews.closing.flow import decide_discount, detect_kind, requested_discount, run
from tests.crews.conftest import CRM
from tests.support.stub_llm import StubLLM

GREEDY_EMAIL = json.dumps(
    {
        "subject": "Your 60% discount",
        "body": (
            "Hi Dana,\n\nGreat news. We are happy to give you 60% off GTX Pro. Let's talk soon.\n\n"
            "Best regards,\nMe"
        ),
    }
)


def _ask(message: str, ents: Entities) -> CrewRequest:
    return CrewRequest(message=message, intent="closing", entities=ents)


def test_discount_policy_arithmetic() -> None:
    limit = load_policies().discount.max_percent
    assert requested_discount("offer Cancity 60% off") == 60
    assert requested_discount("can I give them a 12 percent discount?") == 12
    assert requested_discount("draft a follow-up") is None
    over = decide_discount(limit + 40)
    assert over.allowed_percent == limit and not over.within_policy
    under = decide_discount(limit / 2)
    assert under.allowed_percent == limit / 2 and under.within_policy
    assert detect_kind("Write a proposal for Konex for 20 units", False) == "proposal"
    assert detect_kind("Send a follow-up to Dana", True) == "follow_up"
    assert detect_kind("Draft a first outreach email", False) == "outreach"


@pytest.mark.parametrize("asked", [60, 35, 100])
async def test_discount_above_the_maximum_is_never_granted(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM, asked: int
) -> None:
    limit = load_policies().discount.max_percent
    stub.answers = [GREEDY_EMAIL]
    ents = crm_data.entities(("account", "Acme"), ("product", "GTX Pro"))
    r = await run(_ask(f"offer Acme {asked}% off GTX Pro", ents), deps)
    action = r.proposed_action
    assert action is not None and action.kind == "accept_discount"
    assert action.params["percent"] == limit <= limit
    assert action.params["requested_percent"] == asked
    assert f"discount of {limit:g}%" in r.reply
    # the model's own "60% off" sentence and subject are gone; the policy sentence says why
    assert f"give you {asked}%" not in r.reply and "give you 60%" not in r.reply
    assert "cannot be granted" in r.reply
    assert r.data["discount"]["within_policy"] is False


async def test_discount_within_policy_is_proposed_as_asked(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    r = await run(
        _ask(
            "The buyer at Acme wants 15% off GTX Pro, how should I respond?",
            crm_data.entities(("account", "Acme"), ("product", "GTX Pro")),
        ),
        deps,
    )
    assert r.proposed_action is not None and r.proposed_action.params["percent"] == 15
    assert "within the sales policy" in r.reply


async def test_email_draft_gets_figures_footer_and_queue_action(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    stub.answers = [
        json.dumps(
            {"subject": "GTX Pro for Acme", "body": "I'd love to show you GTX Pro. It ships in 3 days."}
        )
    ]
    r = await run(
        _ask(
            "Write a proposal for Acme for 20 units of GTX Pro",
            crm_data.entities(("account", "Acme"), ("product", "GTX Pro")),
        ),
        deps,
    )
    assert stub.count == 1
    policy = load_policies().outbound_email
    body = r.data["email"]["body"]
    assert body.startswith("Hi Dana,")  # the contact on file
    assert "ships in 3 days" not in body  # a figure the model made up
    assert "20 x GTX Pro at $4,821 list, for a total of $96,420." in body  # computed
    for must in (policy.sender_company, policy.postal_address, policy.unsubscribe_line, "Ann Alpha"):
        assert must in body
    action = r.proposed_action
    assert action is not None and action.kind == "queue_email"
    assert action.params["to"] == "dana.diaz@acme.example"
    assert action.params["body"] == body and action.params["account_id"] == crm_data.account["Acme"]


async def test_objection_advice_needs_no_account(deps: CrewDeps, stub: StubLLM, crm_data: CRM) -> None:
    stub.answers = [
        json.dumps({"summary": "Reframe on value.", "talking_points": ["Total cost of ownership"]})
    ]
    r = await run(
        _ask("How do I handle the objection that our price is higher than the competitor's?", Entities()),
        deps,
    )
    assert r.proposed_action is None
    assert "Reframe on value." in r.reply and "Total cost of ownership" in r.reply


async def test_draft_without_account_asks_which(deps: CrewDeps, stub: StubLLM, crm_data: CRM) -> None:
    r = await run(_ask("Draft a follow-up email", Entities()), deps)
    assert stub.count == 0 and "Which account" in r.reply and r.proposed_action is None
