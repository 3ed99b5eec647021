"""Storing next best actions as recommendations (`crm.repository`).

Storing advice is not a customer-facing side effect: it needs no approval. Each batch also writes
one Event "nba.recommended" so the log shows what was advised, to whom, and when.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from crm import repository
from crm.schemas import EventCreate, RecommendationCreate, RecommendationOut
from observability.tracing import traced
from tools._base import CRMTool

__all__ = ["StoreRecommendationTool", "store_recommendations"]


@traced()
def store_recommendations(
    session: Session,
    items: list[RecommendationCreate],
    *,
    actor: str | None = None,
    thread_id: str | None = None,
) -> list[RecommendationOut]:
    """Create the recommendations (status "open") and one Event "nba.recommended" with their ids.
    Raises crm.errors.Invalid for an unknown rep/account/deal id."""
    out = [repository.create_recommendation(session, item) for item in items]
    if out:
        repository.append_event(
            session,
            EventCreate(
                kind="nba.recommended",
                actor=actor,
                thread_id=thread_id,
                account_id=out[0].account_id if len({r.account_id for r in out}) == 1 else None,
                payload={"recommendation_ids": [r.id for r in out], "actions": [r.action for r in out]},
            ),
        )
    return out


class StoreRecommendationArgs(BaseModel):
    action: str = Field(description="the recommended next step")
    reason: str = Field(description="why, with the figures it rests on")
    priority: int = Field(50, ge=0, le=100)
    rep_id: int | None = None
    account_id: int | None = None
    deal_id: int | None = None


class StoreRecommendationTool(CRMTool):
    name: str = "store_recommendation"
    description: str = "Saves a next best action (with its reason) for a rep, account or deal."
    args_schema: type[BaseModel] = StoreRecommendationArgs

    def _run(self, **kwargs: Any) -> str:
        args = StoreRecommendationArgs(**kwargs)
        item = RecommendationCreate(**args.model_dump())
        return self.call_in_session(lambda s: store_recommendations(s, [item]))
