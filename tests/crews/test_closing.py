"""The closing crew with a stub LLM: discounts never granted above the policy's maximum, the
figures and the CAN-SPAM footer added by the crew, the proposed actions, and the draft streamed
sentence by sentence as the model writes it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from config.files import load_policies
from contracts import CrewRequest, Entities
from crews import CrewDeps
from crews.closing.flow import decide_discount, detect_kind, requested_discount, run
from crews.streaming import ReplyRejected, streaming_to
from tests.crews.conftest import CRM
from tests.support.stub_llm import StubLLM

GREEDY_EMAIL = (
    "Subject: Your 60% discount\n\nHi Dana,\n\nGreat news. We are happy to give you 60% off GTX Pro. "
    "Let's talk soon.\n\nBest regards,\nMe"
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
    stub.answers = ["Subject: GTX Pro for Acme\nI'd love to show you GTX Pro. It ships in 3 days."]
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
    stub.answers = ["Reframe on value.\n- Total cost of ownership"]
    r = await run(
        _ask("How do I handle the objection that our price is higher than the competitor's?", Entities()),
        deps,
    )
    assert r.proposed_action is None
    assert "Reframe on value." in r.reply and "Total cost of ownership" in r.reply


async def test_draft_without_account_asks_which(deps: CrewDeps, stub: StubLLM, crm_data: CRM) -> None:
    r = await run(_ask("Draft a follow-up email", Entities()), deps)
    assert stub.count == 0 and "Which account" in r.reply and r.proposed_action is None


# ---------------------------------------------------------------------------------------------
# the reply streams as it is written
# ---------------------------------------------------------------------------------------------


class RecordingSink:
    """A `crews.streaming.ReplySink` that keeps what it is sent (and how many model requests
    the stub had seen then); refuses the first piece containing `refuse`."""

    def __init__(self, stub: StubLLM, refuse: str | None = None) -> None:
        self.stub = stub
        self.refuse = refuse
        self.pieces: list[tuple[int, str]] = []
        self.grounded: list[Any] = []

    async def ground(self, facts: Any, sources: Any) -> None:
        self.grounded = [*facts, *sources]

    def emit(self, text: str) -> None:
        if self.refuse and self.refuse in text:
            raise ReplyRejected(reason="refused in a test")
        self.pieces.append((self.stub.count, text))


FOLLOW_UP = (
    "Subject: Checking in on GTX Pro\nThanks again for your time with our team. GTX Pro fits how Acme "
    "works. It costs $4,000 less than rivals. Shall we find a slot for a short call?\n\n"
    "Best regards,\n[Your Name]\nPS: " + "this part is never read. " * 20
)


async def test_the_draft_streams_sentence_by_sentence_and_equals_the_reply(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    stub.answers = [FOLLOW_UP]
    stub.stream_chunk_chars, stub.chunk_delay_s = 5, 0.01
    sink = RecordingSink(stub)
    ents = crm_data.entities(("account", "Acme"), ("product", "GTX Pro"))
    with streaming_to(sink):
        r = await run(_ask("Write a follow-up email to Acme about GTX Pro", ents), deps)
    assert "".join(p for _, p in sink.pieces) == r.reply  # what streamed is the reply
    # the crew's header went out before the model was asked; then one sentence per piece
    assert sink.pieces[0] == (0, "Draft (follow-up) to Dana Diaz, Head of Purchasing:\n\n")
    texts = [p for _, p in sink.pieces]
    assert "Subject: Checking in on GTX Pro\n\nHi Dana,\n\n" in texts
    assert "Thanks again for your time with our team." in texts and " GTX Pro fits how Acme works." in texts
    assert "$4,000" not in r.reply  # the model's figure is dropped, never streamed
    assert "never read" not in r.reply and "[Your Name]" not in r.reply
    assert r.reply.endswith(load_policies().outbound_email.unsubscribe_line)
    assert any(f.get("kind") == "follow_up" for f in sink.grounded if isinstance(f, dict))
    # the signature stopped the model: it did not write the rest of its answer
    for _ in range(40):
        if stub.disconnects:
            break
        await asyncio.sleep(0.05)
    assert stub.disconnects == 1 and stub.count == 1


async def test_a_refused_sentence_stops_the_crew(crm_data: CRM, deps: CrewDeps, stub: StubLLM) -> None:
    stub.answers = [FOLLOW_UP]
    sink = RecordingSink(stub, refuse="fits how")
    ents = crm_data.entities(("account", "Acme"), ("product", "GTX Pro"))
    with streaming_to(sink), pytest.raises(ReplyRejected):
        await run(_ask("Write a follow-up email to Acme about GTX Pro", ents), deps)
    texts = "".join(p for _, p in sink.pieces)
    assert "Thanks again" in texts and "fits how" not in texts and "Best regards" not in texts
    assert stub.count == 1


async def test_a_model_that_fails_midway_leaves_a_complete_draft(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    stub.fail_next(2, status=500)
    sink = RecordingSink(stub)
    ents = crm_data.entities(("account", "Acme"), ("product", "GTX Pro"))
    with streaming_to(sink):
        r = await run(_ask("Write a first outreach email to Acme about GTX Pro", ents), deps)
    assert "".join(p for _, p in sink.pieces) == r.reply
    assert "Subject: GTX Pro for Acme" in r.reply and "I'm reaching out to introduce GTX Pro" in r.reply
    assert r.proposed_action is not None and r.proposed_action.kind == "queue_email"


async def test_a_json_answer_is_still_read_as_the_draft(crm_data: CRM, deps: CrewDeps, stub: StubLLM) -> None:
    stub.answers = [
        '{"subject": "Meet GTX Pro", "body": "I\'d love to show you GTX Pro. It ships in 3 days."}'
    ]
    sink = RecordingSink(stub)
    ents = crm_data.entities(("account", "Acme"), ("product", "GTX Pro"))
    with streaming_to(sink):
        r = await run(_ask("Write a first outreach email to Acme about GTX Pro", ents), deps)
    assert "".join(p for _, p in sink.pieces) == r.reply
    assert "Subject: Meet GTX Pro\n\nHi Dana,\n\nI'd love to show you GTX Pro.\n\n" in r.reply
    assert "{" not in r.reply and "ships in 3 days" not in r.reply


# ---------------------------------------------------------------------------------------------
# what the rep set themselves: an address, a subject, the words to say, the percent to grant
# ---------------------------------------------------------------------------------------------


async def test_an_email_to_an_address_keeps_the_reps_subject_and_words(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    r = await run(
        _ask(
            "Email lee.wong@example.com, subject 'Pilot dates', saying the pilot starts on the 3rd",
            Entities(),
        ),
        deps,
    )
    assert stub.count == 0  # dictated: no model needed, and no account asked for
    action = r.proposed_action
    assert action is not None and action.kind == "queue_email"
    assert (action.params["to"], action.params["subject"]) == ("lee.wong@example.com", "Pilot dates")
    assert "The pilot starts on the 3rd." in action.params["body"]
    assert "Subject: Pilot dates" in r.reply


async def test_a_drafted_email_keeps_the_reps_subject_over_the_models(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    stub.answers = ["Subject: Something else\nThank you for meeting us today."]
    r = await run(
        _ask(
            "Send a thank-you email to dana.d@example.org about the Acme meeting, subject 'Thanks'",
            crm_data.entities(("account", "Acme")),
        ),
        deps,
    )
    action = r.proposed_action
    assert action is not None and action.params["subject"] == "Thanks"
    assert action.params["to"] == "dana.d@example.org"  # not the contact on file
    assert "Thank you for meeting us today." in action.params["body"]


async def test_the_percent_granted_is_proposed_with_what_the_buyer_asked(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    limit = load_policies().discount.max_percent
    granted = limit - 2
    r = await run(
        _ask(
            f"Acme asked for {limit + 5:g}% off GTX Pro, give them {granted:g}%",
            crm_data.entities(("account", "Acme"), ("product", "GTX Pro")),
        ),
        deps,
    )
    action = r.proposed_action
    assert action is not None and action.kind == "accept_discount"
    assert (action.params["percent"], action.params["requested_percent"]) == (granted, limit + 5)


async def test_approving_a_discount_proposes_it_without_drafting_an_email(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    percent = load_policies().discount.max_percent / 2
    r = await run(
        _ask(f"Approve a {percent:g}% discount on D0000005", crm_data.entities(("deal", "D0000005"))), deps
    )
    action = r.proposed_action
    assert action is not None and action.kind == "accept_discount"
    assert (action.params["deal"], action.params["percent"]) == ("D0000005", percent)
    assert stub.count == 0 and "Subject:" not in r.reply


async def test_an_email_about_a_contract_is_an_email_not_advice(
    crm_data: CRM, deps: CrewDeps, stub: StubLLM
) -> None:
    r = await run(_ask("Email kim@example.com saying the contract is signed", Entities()), deps)
    assert stub.count == 0  # dictated, and "contract" does not turn it into negotiation advice
    assert r.proposed_action is not None and r.proposed_action.kind == "queue_email"
