"""The guards' boundary types: what the graph passes in (`GuardContext`) and gets back
(`GuardOutcome` with one `Verdict` per validator and target)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel

from crews.contracts import CrewResponse, ProposedAction
from guards.names import NameIndex

Action = Literal["pass", "fixed", "reask", "refused", "noted"]
Decision = Literal["pass", "fixed", "reask", "refuse"]


class Verdict(BaseModel):
    """One validator's result on one target of a turn.

    `target`: "reply", "data" (the crew's typed output) or "action.<param>" (a text parameter of
    the proposed action, e.g. the body of an email to queue); `action`: what the guards did:
    pass | fixed | reask | refused | noted (a failure recorded only, on_fail noop);
    `latency_ms`: the validator's own run time.
    """

    validator: str
    target: str = "reply"
    passed: bool
    action: Action
    message: str = ""
    latency_ms: float = 0.0


@dataclass(frozen=True)
class GuardContext:
    """What the validators need besides the crew's response; the caller gathers it (no database
    or LLM call happens inside the guards).

    - `intent`: picks the validators (config/guards.yaml);
    - `message`: the rep's message (its names and figures count as grounded);
    - `known_names`: the CRM's name index (`NameIndex.from_names(...)`, built once and cached by
      the caller) or plain names: accounts, contacts, reps, managers, products, deal ids, stage,
      sector, office and country names;
    - `allowed_pii`: emails/phones of the CRM record being discussed (not redacted);
    - `attempt`: 0 for the crew's first answer, 1 after a re-ask (then failures that would re-ask
      give the safe reply instead);
    - `output_model`: the crew's pydantic output model, for the schema validator;
    - `is_email`: the reply is an outbound email draft (None: detect it);
    - `list_price`: the deal's product list price, to read "$X off" as a percentage;
    - `extra_facts` / `allowed_numbers`: more grounding material than `response.facts`.
    """

    intent: str = "general"
    message: str = ""
    known_names: NameIndex | Iterable[str] | None = None
    allowed_pii: Sequence[str] = ()
    attempt: int = 0
    output_model: type[BaseModel] | None = None
    is_email: bool | None = None
    list_price: float | None = None
    extra_facts: Sequence[Mapping[str, Any]] = ()
    allowed_numbers: Sequence[float] = field(default_factory=tuple)

    def next_attempt(self) -> GuardContext:
        """The context for checking the crew's answer to a re-ask."""
        return replace(self, attempt=self.attempt + 1)


class GuardOutcome(BaseModel):
    """The guards' decision on one crew response.

    - `decision`: pass (reply unchanged) | fixed (`response.reply`/action rewritten safely) |
      reask (call the crew again once with `reask_instructions`, then check again with
      `context.next_attempt()`) | refuse (`response.reply` is the safe reply, the proposed action
      is dropped);
    - `response`: the response to show (fixed or safe); on reask, the original;
    - `verdicts`: every validator's result, for the graph state, the event log and the trace.
    """

    decision: Decision
    response: CrewResponse
    original_reply: str
    verdicts: list[Verdict]
    reask_instructions: str | None = None
    latency_ms: float = 0.0

    @property
    def needs_reask(self) -> bool:
        return self.decision == "reask"

    @property
    def refused(self) -> bool:
        return self.decision == "refuse"

    @property
    def reply(self) -> str:
        return self.response.reply

    @property
    def proposed_action(self) -> ProposedAction | None:
        return self.response.proposed_action

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]

    def verdict_dicts(self) -> list[dict[str, Any]]:
        """The verdicts as JSON-able dicts (graph state, Event payload, trace scores)."""
        return [v.model_dump() for v in self.verdicts]
