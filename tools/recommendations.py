"""Next best actions: the CRM's signals of what needs doing (`crm.insights.nba_signals`, re-exported
with its `Signal`) and storing them as recommendations (`crm.repository`).

Storing advice is not a customer-facing side effect: it needs no approval. Each batch also writes
one Event "nba.recommended" so the log shows what was advised, to whom, and when.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm import repository
from crm.insights import Signal, nba_signals
from crm.schemas import EventCreate, RecommendationCreate, RecommendationOut
from observability.tracing import traced

__all__ = [
    "RecommendationCreate",
    "RecommendationOut",
    "Signal",
    "nba_signals",
    "store_recommendations",
]


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
