"""Typed outputs of the pipeline crew."""

from __future__ import annotations

from pydantic import BaseModel

from tools.query_plan import QueryPlan

__all__ = ["PipelineResult", "QueryPlan"]


class PipelineResult(BaseModel):
    """The pipeline crew's typed output (`CrewResponse.data`): the rules' plan or the semantic
    layer's query (`crm.semantic.SemanticQuery` as JSON) that was computed, and the computed
    figures (the reply is their template sentence)."""

    plan: QueryPlan | None = None
    query: dict[str, object] | None = None
    figures: dict[str, object] = {}
