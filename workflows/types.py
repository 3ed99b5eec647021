"""The inputs and results of the workflows and activities (pydantic, carried by Temporal's
pydantic data converter). Each is defined once here and imported by both sides."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

# the fire activity's result is the domain's own type, re-exported for the workflow
from tools.reminders import FireResult as FireResult

Recipient = Literal["owner", "manager"]


class Rung(BaseModel):
    """One escalation rung: `after_s` seconds after the due time, notify `notify` again."""

    after_s: float = Field(gt=0)
    notify: Recipient


class ReminderInput(BaseModel):
    """A reminder's workflow: fire at `due_at`, then climb `ladder` while nobody acknowledges."""

    reminder_id: int
    due_at: dt.datetime
    ladder: list[Rung] = []


class FireRequest(BaseModel):
    """Notify about reminder `reminder_id`, due at `due_at` (as the workflow knows it): `level` 0
    is the first notification, N the N-th rung, whose recipient is `notify`."""

    reminder_id: int
    due_at: dt.datetime
    level: int = Field(ge=0)
    notify: Recipient = "owner"


class EmailResult(BaseModel):
    """The outcome of a delivery: `sent` (now or earlier) or `failed` with the reason."""

    status: Literal["sent", "failed"]
    detail: str = ""


class OnboardingInput(BaseModel):
    """A won deal's onboarding; `check_every_s` is how often it looks at its tasks."""

    deal_id: int
    check_every_s: float = Field(3600.0, gt=0)


class OnboardingTasks(BaseModel):
    """The reminders (tasks) an onboarding created, and the emails their creation queued."""

    reminder_ids: list[int]


class AgentRunInput(BaseModel):
    """One run of a scheduled agent for the reps of one time zone."""

    agent: str
    time_zone: str


class AgentRunResult(BaseModel):
    """What a run filed: inbox items per kind."""

    filed: dict[str, int] = {}


class DispatchResult(BaseModel):
    """Workflows started by one dispatch, and those already running."""

    started: int = 0
    already: int = 0


class SequenceStepSpec(BaseModel):
    """A step of a follow-up sequence, as the workflow was started with it (`config/sequences.yaml`)."""

    after_s: float = Field(ge=0)
    kind: Literal["email", "task"]
    brief: str | None = None
    title: str | None = None


class SequenceInput(BaseModel):
    """A follow-up sequence for deal `deal_id`, started while it was in `stage`."""

    deal_id: int
    stage: str
    steps: list[SequenceStepSpec]


class SequenceStepRequest(BaseModel):
    """Run step `index` of the sequence of `deal_id` (started in `stage`)."""

    deal_id: int
    stage: str
    index: int
    step: SequenceStepSpec


class SequenceStepResult(BaseModel):
    """`done` (a draft or alert filed, or a task created), or `stopped` (the deal changed stage
    or closed, or is gone: the sequence ends)."""

    status: Literal["done", "stopped"]
    detail: str = ""
