"""`/api/reps`: sales reps with their manager and regional office."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.deps import Limit, Offset, PathId, QueryText, SessionDep
from app.api.responses import errors, links
from crm import analytics, repository
from crm.schemas import Page, RepProfile, SalesRepCreate, SalesRepOut, SalesRepUpdate

router = APIRouter(prefix="/reps", tags=["reps"], responses=errors(422, 503))


@router.get("", response_model=Page[SalesRepOut])
async def list_reps(
    session: SessionDep,
    manager: QueryText = None,
    office: QueryText = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[SalesRepOut]:
    """Sales reps ordered by name; `office` is the regional office."""
    return await session.run_sync(
        lambda s: repository.list_reps(s, manager=manager, office=office, limit=limit, offset=offset)
    )


@router.get("/{rep_id}", response_model=SalesRepOut, responses=errors(404))
async def get_rep(session: SessionDep, rep_id: PathId) -> SalesRepOut:
    return await session.run_sync(repository.get_rep, rep_id)


@router.get("/{rep_id}/profile", response_model=RepProfile, responses=errors(404))
async def rep_profile(session: SessionDep, rep_id: PathId) -> RepProfile:
    """The rep with teammates (same manager) and deal metrics."""
    return await session.run_sync(analytics.rep_profile, rep_id)


@router.post(
    "",
    response_model=SalesRepOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {
            "links": links(
                "rep_id", "GET /reps/{rep_id}", "PATCH /reps/{rep_id}", "GET /reps/{rep_id}/profile"
            )
        },
        **errors(400, 409),
    },
)
async def create_rep(session: SessionDep, body: SalesRepCreate) -> SalesRepOut:
    """409 if the name is taken (any case)."""
    return await session.run_sync(repository.create_rep, body)


@router.patch("/{rep_id}", response_model=SalesRepOut, responses=errors(400, 404, 409))
async def update_rep(session: SessionDep, rep_id: PathId, body: SalesRepUpdate) -> SalesRepOut:
    return await session.run_sync(repository.update_rep, rep_id, body)
