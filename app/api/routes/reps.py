"""`/api/reps`: sales reps with their manager and regional office.

Every signed-in user reads the list and each rep (names, managers and offices are not secret:
a rep sees who their teammates are, the workspace shows deal owners). A rep's profile carries
their deal figures, so it needs the caller to read that rep's deals (403 otherwise). Only an
admin adds or changes reps (403 for other roles)."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.auth import CallerDep
from app.api.deps import Limit, Offset, PathId, QueryText, SessionDep
from app.api.responses import errors, links
from crm import analytics, repository
from crm.errors import Forbidden
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


@router.get("/{rep_id}/profile", response_model=RepProfile, responses=errors(403, 404))
async def rep_profile(session: SessionDep, caller: CallerDep, rep_id: PathId) -> RepProfile:
    """The rep with teammates (same manager) and deal metrics; 403 when the caller does not read
    that rep's deals."""
    profile = await session.run_sync(analytics.rep_profile, rep_id)
    if not caller.may_read_rep(profile.rep.id):
        raise Forbidden(f"the deal figures of rep {rep_id} are not yours to read")
    return profile


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
async def create_rep(session: SessionDep, caller: CallerDep, body: SalesRepCreate) -> SalesRepOut:
    """409 if the name is taken (any case); 403 unless the caller is an admin."""
    _admin_only(caller.role)
    return await session.run_sync(repository.create_rep, body)


@router.patch("/{rep_id}", response_model=SalesRepOut, responses=errors(400, 404, 409))
async def update_rep(
    session: SessionDep, caller: CallerDep, rep_id: PathId, body: SalesRepUpdate
) -> SalesRepOut:
    """Change only the fields sent (a new manager moves the rep to that team); 403 unless the
    caller is an admin."""
    _admin_only(caller.role)
    return await session.run_sync(repository.update_rep, rep_id, body)


def _admin_only(role: str) -> None:
    if role != "admin":
        raise Forbidden("only an admin adds or changes sales reps")
