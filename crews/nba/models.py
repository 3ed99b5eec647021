"""Typed outputs of the next-best-action crew."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class NbaWording(BaseModel):
    """The coach's words (LLM output)."""

    summary: str = Field(min_length=1, max_length=1000)


class NextAction(BaseModel):
    """One ranked action with its reason, score (0-100), the records behind it and the id of the
    stored recommendation."""

    rank: int
    kind: str
    action: str
    reason: str
    score: int
    deal: str | None = None
    account: str | None = None
    recommendation_id: int | None = None


class NbaResult(BaseModel):
    """The nba crew's typed output (`CrewResponse.data`)."""

    scope: Literal["deal", "account", "rep", "all"]
    scope_name: str | None = None
    actions: list[NextAction]
    summary: str | None = None
