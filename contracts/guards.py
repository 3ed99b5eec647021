"""The guards' verdicts and decision on one crew response: produced by `guards/`, read by the
graph's guard step, the event log and the trace."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from contracts.chat import CrewResponse, ProposedAction

#: What the guards did about one verdict.
GuardAction = Literal["pass", "fixed", "reask", "refused", "noted"]
#: The guards' decision on one crew response.
GuardDecision = Literal["pass", "fixed", "reask", "refuse"]


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
    action: GuardAction
    message: str = ""
    latency_ms: float = 0.0


class GuardOutcome(BaseModel):
    """The guards' decision on one crew response.

    - `decision`: pass (reply unchanged) | fixed (`response.reply`/action rewritten safely) |
      reask (call the crew again once with `reask_instructions`, then check again with
      `context.next_attempt()`) | refuse (`response.reply` is the safe reply, the proposed action
      is dropped);
    - `response`: the response to show (fixed or safe); on reask, the original;
    - `verdicts`: every validator's result, for the graph state, the event log and the trace.
    """

    decision: GuardDecision
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
