"""`check_reply`: the fix / re-ask / safe-reply decisions, targets beyond the reply, and config."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from contracts import CrewResponse, ProposedAction
from guards.config import GuardsConfig, load_guards_config
from guards.names import NameIndex
from guards.runner import check_reply, safe_reply, validate_output
from guards.types import GuardContext, Verdict

FACTS = [{"kind": "rep_metrics", "rep": "Darcel Schlecht", "won": 349, "lost": 204, "win_rate": 0.6311}]


def ctx(index: NameIndex, intent: str = "pipeline", **kw: object) -> GuardContext:
    return GuardContext(intent=intent, message=str(kw.pop("message", "")), known_names=index, **kw)  # type: ignore[arg-type]


def test_grounded_reply_passes(index: NameIndex) -> None:
    response = CrewResponse(reply="Darcel Schlecht has won 349 deals, a 63.1% win rate.", facts=FACTS)
    outcome = check_reply(response, ctx(index))
    assert outcome.decision == "pass"
    assert outcome.reply == response.reply
    assert [v.validator for v in outcome.verdicts] == ["privacy", "tone", "grounding"]
    # each validator's run is timed (perf_counter, not rounded)
    assert all(v.passed and v.action == "pass" and v.latency_ms > 0 for v in outcome.verdicts)


def test_invented_figure_reasks_once_then_refuses(index: NameIndex) -> None:
    response = CrewResponse(reply="Darcel Schlecht has won 412 deals.", facts=FACTS)
    first = check_reply(response, ctx(index))
    assert first.decision == "reask"
    assert first.reask_instructions is not None and '"412"' in first.reask_instructions
    assert first.reply == response.reply  # not shown; the caller re-asks the crew
    second = check_reply(response, ctx(index).next_attempt())
    assert second.decision == "refuse"
    assert "could not be matched to the CRM data" in second.reply
    assert second.failures[0].action == "refused"


def test_fixes_are_applied_and_chained(index: NameIndex) -> None:
    response = CrewResponse(
        reply="Darcel Schlecht won 349 deals. His damn personal email is darcel@gmail.com.", facts=FACTS
    )
    outcome = check_reply(response, ctx(index))
    assert outcome.decision == "fixed"
    assert outcome.reply == "Darcel Schlecht won 349 deals. His d*** personal email is [redacted email]."
    assert {v.validator: v.action for v in outcome.verdicts} == {
        "privacy": "fixed",
        "tone": "fixed",
        "grounding": "pass",
    }


def test_commitment_reasks_and_refusal_drops_the_action(index: NameIndex) -> None:
    action = ProposedAction(kind="create_task", summary="Confirm the delivery date with Cancity")
    response = CrewResponse(reply="Delivery to Cancity is guaranteed by Friday.", proposed_action=action)
    assert check_reply(response, ctx(index, "delivery")).decision == "reask"
    refused = check_reply(response, ctx(index, "delivery", attempt=1))
    assert refused.decision == "refuse"
    assert refused.proposed_action is None
    assert "commitment" in refused.reply


def test_closing_discount_is_capped_in_reply_email_and_action(index: NameIndex) -> None:
    """ "Offer Cancity 60% off": nothing above the policy maximum reaches the rep or the customer."""
    email = "Hi Lena,\n\nWe can offer Cancity 60% off GTX Plus Pro.\n\nBest regards,\nDarcel Schlecht"
    action = ProposedAction(
        kind="queue_email",
        summary="Email Lena a 60% discount offer",
        params={"to": "lena.ortiz@cancity.com", "subject": "Your GTX Plus Pro offer", "body": email},
    )
    response = CrewResponse(reply=email, proposed_action=action)
    outcome = check_reply(
        response,
        ctx(index, "closing", message="offer Cancity 60% off", allowed_pii=["lena.ortiz@cancity.com"]),
    )
    assert outcome.decision == "fixed"
    assert "20% off" in outcome.reply and "60%" not in outcome.reply
    assert "UNSUBSCRIBE" in outcome.reply  # CAN-SPAM footer appended
    fixed = outcome.proposed_action
    assert fixed is not None
    assert "20% off" in fixed.params["body"] and "500 Market Street" in fixed.params["body"]
    assert fixed.summary == "Email Lena a 20% discount offer"
    assert fixed.params["to"] == "lena.ortiz@cancity.com"
    targets = {(v.validator, v.target) for v in outcome.verdicts if v.action == "fixed"}
    assert ("can_spam", "action.body") in targets and ("discount_policy", "action.summary") in targets


def test_unsafe_discount_cap_gives_the_safe_reply(index: NameIndex) -> None:
    response = CrewResponse(reply="Offer 60% off, which brings GTX Pro to $1,928 per unit.")
    outcome = check_reply(response, ctx(index, "closing", message="offer Cancity 60% off"))
    assert outcome.decision == "refuse"
    assert "above the 20% maximum" in outcome.reply


def test_accept_discount_action_is_capped(index: NameIndex) -> None:
    action = ProposedAction(
        kind="accept_discount", summary="Accept a discount for Cancity", params={"percent": 60}
    )
    outcome = check_reply(
        CrewResponse(reply="I prepared the discount for approval.", proposed_action=action),
        ctx(index, "closing"),
    )
    assert outcome.decision == "fixed"
    assert outcome.proposed_action is not None and outcome.proposed_action.params["percent"] == 20


class Summary(BaseModel):
    account: str
    open_deals: int


def test_schema_failure_reasks(index: NameIndex) -> None:
    good = CrewResponse(
        reply="Cancity has 3 open deals.", data={"account": "Cancity", "open_deals": 3}, facts=[{"open": 3}]
    )
    assert check_reply(good, ctx(index, output_model=Summary)).decision == "pass"
    bad = good.model_copy(update={"data": {"account": "Cancity", "open_deals": "three"}})
    outcome = check_reply(bad, ctx(index, output_model=Summary))
    assert outcome.decision == "reask"
    assert outcome.verdicts[0].validator == "schema" and outcome.verdicts[0].target == "data"


def test_validate_output_returns_a_verdict() -> None:
    assert validate_output(Summary, {"account": "A", "open_deals": 1}).passed
    v = validate_output(Summary, {"account": "A"})
    assert (v.passed, v.action, v.validator) == (False, "reask", "schema") and "open_deals" in v.message


def test_noop_records_without_acting(index: NameIndex) -> None:
    cfg = load_guards_config().model_copy(deep=True)
    cfg.validators["grounding"].on_fail = "noop"
    outcome = check_reply(
        CrewResponse(reply="Darcel Schlecht won 999 deals.", facts=FACTS), ctx(index), config=cfg
    )
    assert outcome.decision == "pass"
    assert outcome.verdicts[-1].action == "noted" and not outcome.verdicts[-1].passed


def test_general_intent_runs_its_own_set(index: NameIndex) -> None:
    outcome = check_reply(CrewResponse(reply="Hello! I can help with 42 things."), ctx(index, "general"))
    assert outcome.decision == "pass"  # no grounding for small talk
    assert "grounding" not in {v.validator for v in outcome.verdicts}


def test_config_rejects_unknown_names() -> None:
    base = load_guards_config().model_dump()
    with pytest.raises(ValidationError, match="on_fail"):
        GuardsConfig.model_validate(
            {**base, "validators": {**base["validators"], "tone": {"on_fail": "shout"}}}
        )
    with pytest.raises(ValidationError, match="intents"):
        GuardsConfig.model_validate({**base, "intents": {"closing": ["spellcheck"]}})


def test_safe_reply_says_what_failed() -> None:
    text = safe_reply(
        [
            Verdict(validator="grounding", passed=False, action="refused"),
            Verdict(validator="discount_policy", passed=False, action="refused"),
        ],
        max_percent=20,
    )
    assert "could not be matched to the CRM data" in text and "20% maximum" in text
    assert "Nothing was changed" in text
