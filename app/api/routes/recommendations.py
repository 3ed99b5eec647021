"""`/api/recommendations`: next best actions proposed to reps, and what they did with them.

Scope (`crm.access`): a recommendation belongs to its deal's rep, else to its own `rep_id`; the
caller sees those of the reps they read (others are a 404) and creates or decides those of the
reps they act for (403 otherwise). A status change is logged with the caller as its actor."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from app.api.auth import CallerDep
from app.api.deps import Limit, Offset, PathId, QueryId, SessionDep
from app.api.responses import errors, links
from crm import access, repository
from crm.models import Recommendation
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
    caller: CallerDep,
    rep_id: QueryId = None,
    account_id: QueryId = None,
    deal_id: QueryId = None,
    status: RecommendationStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[RecommendationOut]:
    """Recommendations the caller sees, highest priority first, then newest."""
    scope = access.owned_condition(Recommendation, caller.read_rep_ids)
    return await session.run_sync(
        lambda s: repository.list_recommendations(
            s,
            rep_id=rep_id,
            account_id=account_id,
            deal_id=deal_id,
            status=status,
            limit=limit,
            offset=offset,
            scope=scope,
        )
    )


@router.get("/{recommendation_id}", response_model=RecommendationOut, responses=errors(404))
async def get_recommendation(
    session: SessionDep, caller: CallerDep, recommendation_id: PathId
) -> RecommendationOut:
    """The recommendation; 404 when it does not exist or belongs to a rep the caller does not read."""

    def _get(s: Session) -> RecommendationOut:
        access.check_owned(s, caller, Recommendation, recommendation_id, "recommendation")
        return repository.get_recommendation(s, recommendation_id)

    return await session.run_sync(_get)


_CREATED = links(
    "recommendation_id",
    "GET /recommendations/{recommendation_id}",
    "PATCH /recommendations/{recommendation_id}",
)


@router.post(
    "",
    response_model=RecommendationOut,
    status_code=status.HTTP_201_CREATED,
    responses={201: {"links": _CREATED}, **errors(400, 403, 409)},
)
async def create_recommendation(
    session: SessionDep, caller: CallerDep, body: RecommendationCreate
) -> RecommendationOut:
    """409 for an unknown rep/account/deal id; 403 for a deal or rep the caller does not act for."""

    def _create(s: Session) -> RecommendationOut:
        data = access.scoped_refs(s, caller, body)
        return repository.create_recommendation(s, data)

    return await session.run_sync(_create)


@router.patch("/{recommendation_id}", response_model=RecommendationOut, responses=errors(400, 403, 404))
async def update_recommendation(
    session: SessionDep, caller: CallerDep, recommendation_id: PathId, body: RecommendationUpdate
) -> RecommendationOut:
    """Accept, dismiss or complete a recommendation (a status change is logged as an event whose
    actor is the caller)."""

    def _update(s: Session) -> RecommendationOut:
        access.check_owned(s, caller, Recommendation, recommendation_id, "recommendation", act=True)
        return repository.update_recommendation(s, recommendation_id, body, actor=caller.actor)

    return await session.run_sync(_update)
