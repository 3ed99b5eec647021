"""Streamed replies, sentence by sentence: the splitter (`guards.text.SentenceSplitter`) and the
per-sentence guard (`guards.sentences.SentenceGuard`), checked against the whole-reply guard on the
shipped guard cases: never stricter, and it catches what the whole-reply validators catch."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from contracts import CrewResponse
from guards.config import load_guards_config
from guards.evaluation import load_cases, run_case
from guards.names import NameIndex
from guards.runner import check_reply
from guards.sentences import SENTENCE_TARGET, SentenceGuard
from guards.text import SentenceSplitter, sentence_spans
from guards.types import GuardContext

CASES = Path(__file__).resolve().parents[2] / "eval" / "guards_cases.jsonl"
FACTS = [{"kind": "rep_metrics", "rep": "Darcel Schlecht", "won": 349, "lost": 204, "win_rate": 0.6311}]
EMAIL = (
    "Subject: GTX Pro for Cancity\n\nHi Lena,\n\nThanks for your time last week! GTX Pro fits how "
    "Cancity works.  Shall we talk?\nI can share a short demo (about an hour).\n\nBest regards,\nMe"
)


def _split(text: str, rng: random.Random) -> list[str]:
    """`text` fed to a splitter in random pieces of 1-9 characters, then flushed."""
    splitter, units, i = SentenceSplitter(), [], 0
    while i < len(text):
        n = rng.randint(1, 9)
        units += splitter.feed(text[i : i + n])
        i += n
    return units + splitter.flush()


def test_splitter_returns_the_text_whole_in_the_sentences_of_the_guards() -> None:
    rng = random.Random(7)
    expected = [EMAIL[s:e] for s, e in sentence_spans(EMAIL)]
    for _ in range(50):
        units = _split(EMAIL, rng)
        assert "".join(units) == EMAIL
        assert [u.strip() for u in units] == expected  # the same sentences, however it arrives


def test_a_sentence_is_complete_only_once_its_gap_is() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hello there.") == []
    assert splitter.feed("\n") == []  # the gap may continue: ".\n\n"
    assert splitter.feed("\nNext") == ["Hello there.\n\n"]
    assert splitter.pending == "Next"
    assert splitter.feed(" one. ") == []
    assert splitter.flush() == ["Next one. "]
    assert splitter.flush() == []


def _guard(index: NameIndex, **kw: object) -> SentenceGuard:
    guard = SentenceGuard.for_intent("pipeline", known_names=index, **kw)  # type: ignore[arg-type]
    return guard.grounded_in(FACTS)


def test_each_sentence_is_checked_in_the_context_of_what_was_sent(index: NameIndex) -> None:
    guard = _guard(index)
    ok = guard.check("Darcel Schlecht has won 349 deals. ")
    assert not ok.failed and ok.text == "Darcel Schlecht has won 349 deals. " and ok.verdicts == []

    invented = guard.check("That is 412 more than last year.", before=ok.text)
    assert invented.failed and [v.validator for v in invented.failures] == ["grounding"]
    assert invented.failures[0].action == "reask" and '"412"' in invented.failures[0].message
    assert invented.failures[0].target == SENTENCE_TARGET
    # a re-asked answer that fails again gives the safe reply
    assert replace(guard, attempt=1).check("That is 412 more.").failures[0].action == "refused"

    stranger = guard.check("Northwind Traders won more.", before=ok.text)
    assert stranger.failed and "Northwind Traders" in stranger.failures[0].message

    # whole numbers that may count a list written later pass here (the whole reply checks them)
    assert not guard.check("Here are 3 steps:\n").failed


def test_fixes_are_applied_to_the_sentence_that_is_sent(index: NameIndex) -> None:
    guard = _guard(index)
    pii = guard.check("Write to darcel@gmail.com today. ")
    assert not pii.failed and pii.text == "Write to [redacted email] today. "
    assert [(v.validator, v.action) for v in pii.verdicts] == [("privacy", "fixed")]
    allowed = _guard(index, allowed_pii=["darcel@gmail.com"]).check("Write to darcel@gmail.com today. ")
    assert allowed.text == "Write to darcel@gmail.com today. " and allowed.verdicts == []

    promise = SentenceGuard.for_intent("closing", known_names=index).check("We guarantee delivery by Friday.")
    assert promise.failed and promise.failures[0].validator == "tone"

    capped = SentenceGuard.for_intent("closing", known_names=index).check("We can offer you 35% off.")
    limit = SentenceGuard.for_intent("closing").max_percent
    assert not capped.failed and f"{limit:g}% off" in capped.text and "35%" not in capped.text
    # a grant of a figure that was sent earlier cannot be capped any more: the sentence fails
    later = SentenceGuard.for_intent("closing", known_names=index).check(
        "We can do that.", before="Cancity asked for 60% off. "
    )
    assert later.failed and later.failures[0].validator == "discount_policy"


def test_only_the_intents_validators_run(index: NameIndex) -> None:
    general = SentenceGuard.for_intent("general", known_names=index)
    assert general.validators == {"privacy", "tone", "discount_policy"}
    assert not general.check("Northwind Traders has 412 stores.").failed  # no grounding for general


@pytest.mark.parametrize("seed", [1, 2])
def test_a_reply_the_whole_guard_passes_streams_without_a_failure(index: NameIndex, seed: int) -> None:
    reply = (
        "Darcel Schlecht has won 349 deals and lost 204, a 63.1% win rate.\n\n"
        "Here are 2 things to do next:\n- Call Cancity about GTX Pro.\n- Review the lost deals."
    )
    whole = check_reply(
        CrewResponse(reply=reply, facts=FACTS), GuardContext(intent="pipeline", known_names=index)
    )
    assert whole.decision == "pass"
    guard, sent = _guard(index), ""
    for unit in _split(reply, random.Random(seed)):
        check = guard.check(unit, before=sent)
        assert not check.failed and check.verdicts == [], (unit, check.verdicts)
        sent += check.text
    assert sent == reply


def test_never_stricter_than_the_whole_reply_validators_on_the_shipped_cases() -> None:
    """Every shipped case of a text validator, streamed sentence by sentence through a guard with
    that validator alone: a text its validator passes never fails or changes on the way, and a
    text its validator fails is caught on the way (a failure or a fix)."""
    cfg = load_guards_config()
    stricter, missed, checked = [], [], 0
    for case in load_cases(CASES):
        if case.validator not in ("privacy", "tone", "discount_policy", "grounding"):
            continue
        checked += 1
        c = case.context
        guard = SentenceGuard.for_intent(
            "closing",
            message=str(c.get("message", "")),
            known_names=c.get("known_names"),
            allowed_pii=c.get("allowed_pii", ()),
            list_price=c.get("list_price"),
            config=cfg,
        )
        guard = replace(guard, validators=frozenset({case.validator}))
        if "max_percent" in c:
            guard = replace(guard, max_percent=float(c["max_percent"]))
        guard = guard.grounded_in(c.get("facts") or [])
        sent, caught = "", False
        for unit in _split(case.text, random.Random(0)):
            check = guard.check(unit, before=sent)
            caught = caught or bool(check.verdicts)
            if check.failed:
                break
            sent += check.text
        whole = run_case(case).predicted
        if whole == "pass" and caught:
            stricter.append(case.id)
        if whole == "fail" and not caught:
            missed.append(case.id)
    assert checked >= 80
    assert stricter == [] and missed == []
