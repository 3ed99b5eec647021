"""Typed outputs of the pipeline crews."""

from __future__ import annotations

from pydantic import BaseModel, Field

from crews.pipeline.plan import LLMPlan, QueryPlan

__all__ = ["LLMPlan", "PipelineReply", "PipelineResult", "QueryPlan"]


class PipelineReply(BaseModel):
    """What the analyst agent returns: the reply to the rep."""

    reply: str = Field(min_length=1, max_length=1500)


class PipelineResult(BaseModel):
    """The pipeline crew's typed output (`CrewResponse.data`): the plan that was computed, the
    computed figures, and whether the reply is the model's wording (`phrased`) or the template."""

    plan: QueryPlan | None = None
    figures: dict[str, object] = {}
    phrased: bool = False
