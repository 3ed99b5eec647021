"""Typed outputs of the discovery crew."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tools.deal_leads import DealLead

__all__ = [
    "BantAssessment",
    "BantStatus",
    "DealLead",
    "DiscoveryResult",
    "LeadScore",
    "ResearchBrief",
]

BantStatus = Literal["yes", "no", "unknown"]


class ResearchBrief(BaseModel):
    """The researcher's briefing on an account (LLM output)."""

    summary: str = Field(min_length=1, max_length=1500)
    talking_points: list[str] = Field(default_factory=list, max_length=5)


class BantAssessment(BaseModel):
    """The researcher's BANT judgement of a lead (LLM output, flat so the JSON grammar stays
    simple): each criterion yes / no / unknown with its evidence, and a next step."""

    budget: BantStatus = "unknown"
    budget_evidence: str = ""
    authority: BantStatus = "unknown"
    authority_evidence: str = ""
    need: BantStatus = "unknown"
    need_evidence: str = ""
    timeline: BantStatus = "unknown"
    timeline_evidence: str = ""
    next_step: str = ""


class LeadScore(BaseModel):
    """A lead score 0-100 with the reasons that add up to it (computed in Python, see
    `crews.discovery.scoring`)."""

    score: int = Field(ge=0, le=100)
    reasons: list[str]


class DiscoveryResult(BaseModel):
    """The discovery crew's typed output (`CrewResponse.data`)."""

    kind: Literal[
        "fact", "pipeline_fact", "research", "qualification", "lead_ranking", "prospects", "unknown"
    ]
    account: str | None = None
    brief: ResearchBrief | None = None
    bant: BantAssessment | None = None
    lead_score: LeadScore | None = None
    leads: list[DealLead] = []
    figures: dict[str, object] = {}
