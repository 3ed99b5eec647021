"""Each registered validator on passing and failing text, its fix, and its use in a plain
Guardrails Guard."""

from __future__ import annotations

import json
import sys
import threading

import pytest
from guardrails import Guard, OnFailAction
from guardrails.validators import FailResult, PassResult
from pydantic import BaseModel, Field

from guards import validators
from guards.names import NameIndex
from guards.validators import CanSpam, DiscountPolicy, Grounding, Privacy, Schema, Tone, schema_check


def test_grounding(index: NameIndex) -> None:
    v = Grounding()
    facts = [{"rep": "Darcel Schlecht", "won": 349, "win_rate": 0.6311}]
    meta = {"known_names": index, "facts": facts}
    assert isinstance(v.validate("Darcel Schlecht has won 349 deals (63.1%).", meta), PassResult)
    fail = v.validate("Darcel Schlecht has won 412 deals; Jennifer Walsh won 349.", meta)
    assert isinstance(fail, FailResult)
    assert '"412"' in fail.error_message and "Jennifer Walsh" in fail.error_message
    assert fail.fix_value is None
    assert v.on_fail_descriptor == OnFailAction.REASK


def test_privacy_redacts_what_is_not_the_crm_record() -> None:
    v = Privacy()
    meta = {"allowed_pii": ["lena.ortiz@cancity.com", "+1 415 555 0134"]}
    assert isinstance(v.validate("Reach Lena at LENA.ORTIZ@cancity.com or (415) 555-0134.", meta), PassResult)
    text = "Home: lena@gmail.com, cell 212-555-0198, card 4111 1111 1111 1111, SSN 123-45-6789."
    fail = v.validate(text, meta)
    assert isinstance(fail, FailResult)
    assert fail.fix_value == (
        "Home: [redacted email], cell [redacted phone number], card [redacted card number], "
        "SSN [redacted national id]."
    )
    # a 16-digit number failing the Luhn check is not a card
    assert isinstance(v.validate("Invoice 4111 1111 1111 1112 is unpaid.", {}), PassResult)


def test_tone() -> None:
    v = Tone()
    for ok in ("We can't guarantee a date yet.", "They asked whether we could lock the price?"):
        assert isinstance(v.validate(ok, {}), PassResult), ok
    profane = v.validate("This damn contract is late.", {})
    assert isinstance(profane, FailResult) and profane.fix_value == "This d*** contract is late."
    for bad in (
        "Delivery is guaranteed by Friday.",
        "The buyer is clueless.",
        "We'll lock in today's price.",
    ):
        result = v.validate(bad, {})
        assert isinstance(result, FailResult) and result.fix_value is None, bad


def test_discount_policy_caps_when_safe() -> None:
    v = DiscountPolicy(max_percent=20)
    ok = "They asked for 60% off, but the most we can offer is 20%."
    assert isinstance(v.validate(ok, {}), PassResult)
    fail = v.validate("We can offer Cancity 60% off GTX Plus Pro.", {})
    assert isinstance(fail, FailResult)
    assert fail.fix_value == "We can offer Cancity 20% off GTX Plus Pro."
    derived = v.validate("We can offer 30% off, which brings GTX Pro to $3,375.", {})
    assert isinstance(derived, FailResult) and derived.fix_value is None
    accepted = v.validate("Cancity asked for 60% off. We can do that.", {})
    assert isinstance(accepted, FailResult) and accepted.fix_value is None
    assert isinstance(v.validate("Take $1,500 off GTX Pro.", {"list_price": 4821}), FailResult)


def test_discount_limit_defaults_to_policies_yaml() -> None:
    from config.files import load_policies

    assert DiscountPolicy().limit({}) == load_policies().discount.max_percent
    assert DiscountPolicy().limit({"max_percent": 35}) == 35


def test_can_spam_appends_what_is_missing() -> None:
    v = CanSpam(
        sender_company="Acme Sales", postal_address="1 Main St, Springfield", unsubscribe_line="Reply STOP."
    )
    email = "Hi Lena,\n\nThe proposal is attached.\n\nBest regards,\nDarcel\nAcme Sales"
    fail = v.validate(email, {})
    assert isinstance(fail, FailResult)
    assert fail.fix_value.endswith("--\n1 Main St, Springfield\nReply STOP.\n")
    assert isinstance(v.validate(fail.fix_value, {}), PassResult)
    assert isinstance(v.validate("Cancity has 3 open deals.", {}), PassResult)  # not an email
    assert isinstance(v.validate("Cancity has 3 open deals.", {"is_email": True}), FailResult)


class Quote(BaseModel):
    account: str
    units: int = Field(ge=1)
    discount_percent: float = Field(ge=0, le=100)


def test_schema_via_guard_for_pydantic() -> None:
    assert schema_check(Quote, {"account": "Cancity", "units": 5, "discount_percent": 10}) == (True, "")
    ok, message = schema_check(Quote, {"account": "Cancity", "units": 0})
    assert not ok and "units" in message and "discount_percent" in message
    ok, message = schema_check(Quote, "Sure, here is the quote")
    assert not ok and "JSON" in message
    v = Schema()
    assert isinstance(
        v.validate(json.dumps({"account": "A", "units": 1, "discount_percent": 0}), {"model": Quote}),
        PassResult,
    )
    with pytest.raises(ValueError, match="metadata"):
        v.validate("{}", {})


def test_validators_run_inside_a_guardrails_guard() -> None:
    guard = Guard().use(Privacy(on_fail="fix"), DiscountPolicy(max_percent=20, on_fail="fix"))
    outcome = guard.validate("Email lena@gmail.com: we can offer 45% off.")
    assert outcome.validation_passed
    assert outcome.validated_output == "Email [redacted email]: we can offer 20% off."


class Line(BaseModel):
    product: str
    units: int = Field(ge=1)


class Order(BaseModel):
    """A model whose schema has `$ref`s (nested models, one of them optional)."""

    lines: list[Line]
    main: Line | None = None


def test_schema_check_from_many_threads_at_once_on_a_new_schema() -> None:
    """The schema's resolved form is shared by every thread; the first checks of a new model ran
    at once (threads switching every microsecond) must all pass, none see a half-resolved $ref."""
    order = {"lines": [{"product": "GTX Pro", "units": 2}], "main": {"product": "GTX Pro", "units": 2}}
    failures: list[str] = []
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(20):
            validators._SCHEMA_RUNNERS.pop(Order, None)
            validators.schema_runner(Order)
            start = threading.Barrier(8)

            def check(start: threading.Barrier) -> None:
                start.wait()
                try:
                    ok, message = schema_check(Order, order)
                    if not ok:
                        failures.append(message)
                except Exception as exc:
                    failures.append(repr(exc))

            threads = [threading.Thread(target=check, args=(start,)) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        sys.setswitchinterval(previous)
    assert failures == []
