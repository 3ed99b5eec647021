"""Typed outputs of the delivery crew."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

MilestoneStatus = Literal["done", "due", "upcoming"]


class PlanTask(BaseModel):
    """One onboarding task: what, who, by when (computed from the close date)."""

    title: str
    owner: str
    due: dt.date


class Milestone(BaseModel):
    """A milestone of the onboarding plan, with its tasks; `status` as of the report date."""

    name: str
    due: dt.date
    owner: str
    tasks: list[PlanTask]
    status: MilestoneStatus = "upcoming"


class OnboardingPlan(BaseModel):
    """The plan of a won deal: milestones in order, dated from `close_date`."""

    deal: str
    account: str | None
    product: str | None
    rep: str | None
    close_date: dt.date
    as_of: dt.date
    milestones: list[Milestone]


class DeliveryNote(BaseModel):
    """The onboarding manager's words (LLM output): a summary and points to watch."""

    summary: str = Field(min_length=1, max_length=1500)
    risks: list[str] = Field(default_factory=list, max_length=5)


class DeliveryResult(BaseModel):
    """The delivery crew's typed output (`CrewResponse.data`)."""

    kind: Literal["plan", "status", "not_won", "unknown"]
    plan: OnboardingPlan | None = None
    note: DeliveryNote | None = None
