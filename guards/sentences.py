"""The guards of a streamed reply, sentence by sentence: each sentence is checked before the client
sees it, and one that fails is never sent.

    guard = SentenceGuard.for_intent("closing", message=msg, known_names=index, allowed_pii=pii)
    guard = guard.grounded_in(facts)             # the crew's facts and sources, once known
    check = guard.check(sentence, before=sent)   # SentenceCheck: text to send, or failures

What one sentence is checked for, with the validators' own pure logic and the on-fail actions of
config/guards.yaml (only the validators the intent lists there):

- privacy: emails, phones, card and national id numbers not in `allowed_pii` are redacted
  (on-fail fix), so the redacted sentence is what is sent;
- tone: profanity alone is masked (fix); insults and commitments fail the sentence;
- discount_policy: a discount above the policy maximum is capped where the whole-reply guard
  would cap it (no derived price beside it), else the sentence fails (also when the sentence
  grants a figure sent before it: "They asked for 60% off. We can do that.");
- grounding: names not in the CRM and figures found in none of the facts fail the sentence.

A failure resolves to "reask" while re-asks are left, else "refused" (`guards.config.resolve_action`);
the caller stops the stream and re-asks the crew or shows the safe reply. The can-spam footer and
the crew's schema are properties of the whole reply: `guards.runner.check_reply` still runs on
the finished reply, and stays the authority on what is shown.

Never stricter than the whole-reply guard, so a reply the whole-reply guard passes is never cut
off mid-stream: the sentence is read in the context of the text sent before it (`before`: a name
used lower-case earlier counts as an ordinary word, as in the whole reply), and whole numbers up to
`small_count_max` always pass, since they may count the items of a list that has not been written
yet (the whole-reply guard checks those counts). Pure and fast: no LLM, no database, no Guardrails
import (the caller passes the CRM's names and the facts in, as for `guards.GuardContext`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from contracts.guards import Verdict
from crm.names import NameIndex
from guards.config import (
    GuardsConfig,
    ValidatorName,
    load_guards_config,
    max_discount_percent,
    policy_phrases,
    resolve_action,
)
from guards.discounts import cap_discounts, find_discounts, over_limit
from guards.grounding import check_grounding, describe
from guards.names import as_index
from guards.numbers import FactSet
from guards.pii import LABELS, find_pii, redact
from guards.tone import find_tone_issues, mask_profanity

__all__ = ["SENTENCE_TARGET", "SentenceCheck", "SentenceGuard"]

#: `Verdict.target` of the verdicts given to a streamed sentence.
SENTENCE_TARGET = "reply.sentence"

#: The validators that can judge one sentence, in config/guards.yaml's order of the others.
SENTENCE_VALIDATORS: tuple[ValidatorName, ...] = ("privacy", "tone", "discount_policy", "grounding")


@dataclass(frozen=True)
class SentenceCheck:
    """The guards' answer for one sentence: `text` is what may be sent (the sentence with its
    safe fixes: redactions, masked profanity, a capped discount); `verdicts` lists every check
    that did not pass (fixes included); `failed` is True when the sentence must not be sent
    (then `text` must not be sent either)."""

    text: str
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(v.action in ("reask", "refused") for v in self.verdicts)

    @property
    def failures(self) -> list[Verdict]:
        """The verdicts that stop the stream (action "reask" or "refused")."""
        return [v for v in self.verdicts if v.action in ("reask", "refused")]


@dataclass(frozen=True)
class SentenceGuard:
    """The checks of one crew run's streamed sentences (see the module docstring); build it with
    :meth:`for_intent`. Immutable: :meth:`grounded_in` returns a guard with more facts."""

    validators: frozenset[ValidatorName]
    config: GuardsConfig
    known_names: NameIndex
    message: str = ""
    allowed_pii: tuple[str, ...] = ()
    list_price: float | None = None
    attempt: int = 0
    facts: FactSet = field(default_factory=FactSet)
    ignore_phrases: tuple[str, ...] = ()
    max_percent: float = 100.0

    @classmethod
    def for_intent(
        cls,
        intent: str,
        *,
        message: str = "",
        known_names: NameIndex | Iterable[str] | None = None,
        allowed_pii: Sequence[str] = (),
        list_price: float | None = None,
        attempt: int = 0,
        config: GuardsConfig | None = None,
    ) -> SentenceGuard:
        """The guard for the sentences of `intent`'s crew: its validators from config/guards.yaml
        (those of SENTENCE_VALIDATORS), the CRM's names, the personal data the reply may show,
        the list price (USD, to read "$X off") and the `attempt` (0: the crew's first answer, n
        after the n-th re-ask), as `guards.GuardContext` takes them."""
        cfg = config or load_guards_config()
        wanted = frozenset(n for n in cfg.for_intent(intent) if n in SENTENCE_VALIDATORS)
        return cls(
            validators=wanted,
            config=cfg,
            known_names=as_index(known_names),
            message=message,
            allowed_pii=tuple(allowed_pii),
            list_price=list_price,
            attempt=attempt,
            ignore_phrases=tuple(p for p in policy_phrases(cfg) if p),
            max_percent=max_discount_percent(cfg),
        )

    def grounded_in(self, facts: Sequence[Mapping[str, Any]] | Sequence[Any]) -> SentenceGuard:
        """This guard with the figures and names of `facts` allowed (the crew's
        `CrewResponse.facts` and its sources as dicts, as the whole-reply guard reads them)."""
        return replace(self, facts=FactSet.from_facts(list(facts)))

    def check(self, sentence: str, before: str = "") -> SentenceCheck:
        """Check `sentence` (one or more whole sentences, with the whitespace around them) given
        the text already sent before it (`before`, as sent). Never raises for a bad sentence."""
        text = sentence
        verdicts: list[Verdict] = []
        for name in SENTENCE_VALIDATORS:
            if name not in self.validators:
                continue
            t0 = time.perf_counter()
            message, fix = getattr(self, f"_{name}")(text, before)
            if message is None:
                continue
            action = resolve_action(
                self.config.validators[name].on_fail, fix is not None, self.attempt, self.config.max_reasks
            )
            verdicts.append(
                Verdict(
                    validator=name,
                    target=SENTENCE_TARGET,
                    passed=False,
                    action=action,
                    message=message,
                    latency_ms=(time.perf_counter() - t0) * 1000,
                )
            )
            if action == "fixed" and fix is not None:
                text = fix
        return SentenceCheck(text=text, verdicts=verdicts)

    # ------------------------------------------------------------------ one validator each:
    # (message, fix): message None when the sentence passes; fix None when there is no safe fix

    def _privacy(self, text: str, before: str) -> tuple[str | None, str | None]:
        items = find_pii(text, self.allowed_pii)
        if not items:
            return None, None
        kinds = ", ".join(sorted({LABELS[i.kind] for i in items}))
        return f"Personal data not in the CRM record: {len(items)} item(s) ({kinds})", redact(text, items)

    def _tone(self, text: str, before: str) -> tuple[str | None, str | None]:
        issues = find_tone_issues(text)
        if not issues:
            return None, None
        fixable = all(i.kind == "profanity" for i in issues)
        detail = "; ".join(f'{i.kind} "{i.text}"' for i in issues[:5])
        return f"Tone: {detail}", mask_profanity(text) if fixable else None

    def _discount_policy(self, text: str, before: str) -> tuple[str | None, str | None]:
        # read with what was sent: "They asked for 60% off. We can do that." grants in the
        # second sentence the figure of the first
        known = {m.start for m in over_limit(find_discounts(before, self.list_price), self.max_percent)}
        whole = find_discounts(before + text, list_price=self.list_price)
        bad = [
            m for m in over_limit(whole, self.max_percent) if m.start >= len(before) or m.start not in known
        ]
        if not bad:
            return None, None
        figures = ", ".join(f"{m.percent:g}%" for m in bad)
        message = f"Discount above the {self.max_percent:g}% policy maximum offered: {figures}"
        if any(m.start < len(before) for m in bad):
            return message, None  # the figure was sent already: no fix can take it back
        said = FactSet.from_facts([self.message])
        mentions = find_discounts(text, list_price=self.list_price)
        fix = cap_discounts(
            text, mentions, self.max_percent, lambda n: self.facts.supports(n) or said.supports(n)
        )
        return message, fix if fix != text else None

    def _grounding(self, text: str, before: str) -> tuple[str | None, str | None]:
        options = self.config.validators["grounding"].options
        small = int(options.get("small_count_max", 20))
        issues = check_grounding(
            before + text,
            self.known_names,
            self.facts,
            message=self.message,
            ignore_phrases=self.ignore_phrases,
            small_count_max=small,
            check_names=bool(options.get("check_names", True)),
            check_numbers=bool(options.get("check_numbers", True)),
        )
        mine = [i for i in issues if i.start >= len(before) and not _small_count(i.text, small)]
        if not mine:
            return None, None
        return "Not grounded in the CRM data: " + describe(mine), None


def _small_count(raw: str, limit: int) -> bool:
    """A whole number up to `limit` written alone ("3"), which may count a list (module docstring)."""
    return raw.isdigit() and int(raw) <= limit
