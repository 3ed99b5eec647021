"""Typed outcomes of a chat turn (pydantic only): why a turn failed, what happened to a proposed
action, the rep's decision that resumes a paused turn, and who decided it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.chat import ProposedAction
from contracts.fields import JsonObject

#: The rep's answer to a proposed action.
ApprovalDecision = Literal["approve", "reject", "edit"]
#: What a thread's pending action came to: a decision, or "defer" (moved to the inbox when a new
#: message came while it waited).
ActionDecision = Literal["approve", "reject", "edit", "defer"]


class TurnError(BaseModel):
    """Why a turn ended without an answer.

    - `node`: the graph node that failed (e.g. "pipeline", "classify_intent").
    - `kind`: "llm_timeout" | "llm_unavailable" | "llm_bad_output" | "llm_http_error" |
      "database" | "state_store" | "turn_deadline" | "busy" | "internal".
    - `message`: a sentence fit for the rep; `retryable`: whether sending the same message again
      can succeed (the message is kept in the thread either way).
    """

    node: str
    kind: str
    message: str
    retryable: bool = True


class ActionResult(BaseModel):
    """What happened to a proposed action after the rep's decision.

    `status` is "done" (approved or edited, then executed), "rejected" (nothing changed),
    "failed" (approved but the CRM refused it: `detail` says why) or "deferred" (moved to the
    inbox, not run: `result["inbox_item_id"]` is the item that runs it once approved there).
    `action` is the action as executed (with the rep's edits merged into `params`); `result`
    what `execute` returned.
    """

    decision: ActionDecision
    status: Literal["done", "rejected", "failed", "deferred"]
    action: ProposedAction
    detail: str = ""
    result: dict[str, Any] = {}


class ResumeValue(BaseModel):
    """The rep's answer to a proposed action (the value a paused graph is resumed with).

    `decision`: "approve" (run as proposed), "edit" (run with `edits` merged into the action's
    `params`; `edits` required and non-empty, as the JSON schema's if/then says) or "reject"
    (change nothing). `action_id`: the action decided on, the `id` of the interrupt frame (and
    of the thread's `pending_action`): a decision on any other action is refused, so a stale
    screen cannot approve what it did not show.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"decision": {"const": "edit"}}, "required": ["decision"]},
            "then": {"properties": {"edits": {"type": "object", "minProperties": 1}}, "required": ["edits"]},
        },
    )

    decision: ApprovalDecision
    action_id: str = Field(min_length=1, max_length=200, description="the pending action's `id`")
    edits: JsonObject | None = None

    @model_validator(mode="after")
    def _edits_for_edit(self) -> ResumeValue:
        if self.decision == "edit" and not self.edits:
            raise ValueError("edits: required (a non-empty object) when decision is 'edit'")
        return self


class DeferValue(BaseModel):
    """The value a paused graph is resumed with when its pending action moves to the inbox
    (a new message came while it waited): `inbox_item_id` is the item that carries it now."""

    decision: Literal["defer"] = "defer"
    action_id: str
    inbox_item_id: int


class ActionMeta(BaseModel):
    """Who decided an action, in which conversation, how: stored with its Event.

    `actor`: who decided (`contracts.identity.Caller.actor`; None when no one is known);
    `decision`: "approve" | "edit" | "reject" | "defer", or a guard decision for a
    `guard.verdicts` Event; `original`: the action as the crew proposed it, before
    the rep's edits; `idempotency_key`: where the approval came from (thread and interrupt, inbox
    item, workflow and step): the action runs at most once per key (None: no such guarantee)."""

    model_config = {"frozen": True}

    actor: str | None
    thread_id: str | None
    decision: str
    original: ProposedAction | None = None
    idempotency_key: str | None = None
