"""Typed outputs of the pipeline crew."""

from __future__ import annotations

from pydantic import BaseModel

from tools.query_plan import LLMPlan, QueryPlan

__all__ = ["LLMPlan", "PipelineResult", "QueryPlan"]


class PipelineResult(BaseModel):
    """The pipeline crew's typed output (`CrewResponse.data`): the plan that was computed and the
    computed figures (the reply is their template sentence)."""

    plan: QueryPlan | None = None
    figures: dict[str, object] = {}
