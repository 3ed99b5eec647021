"""`/api/recommendations`: next best actions proposed to reps, and what they did with them."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.deps import Limit, Offset, PathId, QueryId, SessionDep
from app.api.responses import errors, links
from crm import repository
from crm.schemas import (
    Page,
    RecommendationCreate,
    RecommendationOut,
    RecommendationStatus,
    RecommendationUpdate,
)

router = APIRouter(prefix="/recommendations", tags=["recommendations"], responses=errors(422, 503))


@router.get("", response_model=Page[RecommendationOut])
async def list_recommendations(
    session: SessionDep,
    rep_id: QueryId = None,
    account_id: QueryId = None,
    deal_id: QueryId = None,
    status: RecommendationStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[RecommendationOut]:
    """Recommendations, highest priority first, then newest."""
    return await session.run_sync(
        lambda s: repository.list_recommendations(
            s,
            rep_id=rep_id,
            account_id=account_id,
            deal_id=deal_id,
            status=status,
            limit=limit,
            offset=offset,
        )
    )


@router.get("/{recommendation_id}", response_model=RecommendationOut, responses=errors(404))
async def get_recommendation(session: SessionDep, recommendation_id: PathId) -> RecommendationOut:
    return await session.run_sync(repository.get_recommendation, recommendation_id)


_CREATED = links(
    "recommendation_id",
    "GET /recommendations/{recommendation_id}",
    "PATCH /recommendations/{recommendation_id}",
)


@router.post(
    "",
    response_model=RecommendationOut,
    status_code=status.HTTP_201_CREATED,
    responses={201: {"links": _CREATED}, **errors(400, 409)},
)
async def create_recommendation(session: SessionDep, body: RecommendationCreate) -> RecommendationOut:
    """409 for an unknown rep/account/deal id."""
    return await session.run_sync(repository.create_recommendation, body)


@router.patch("/{recommendation_id}", response_model=RecommendationOut, responses=errors(400, 404))
async def update_recommendation(
    session: SessionDep, recommendation_id: PathId, body: RecommendationUpdate
) -> RecommendationOut:
    """Accept, dismiss or complete a recommendation (a status change is logged as an event)."""
    return await session.run_sync(repository.update_recommendation, recommendation_id, body)
