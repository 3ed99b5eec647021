"""`/api/accounts`: customer and prospect companies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import Limit, Offset, PathId, QueryText, SessionDep
from app.api.responses import errors, links
from contracts.fields import RecordId, Text
from crm import analytics, repository
from crm.schemas import AccountCreate, AccountOut, AccountProfile, AccountUpdate, Page

router = APIRouter(prefix="/accounts", tags=["accounts"], responses=errors(422, 503))


@router.get("", response_model=Page[AccountOut])
async def list_accounts(
    session: SessionDep,
    q: Annotated[Text | None, Query(description="part of the name, any case")] = None,
    sector: QueryText = None,
    parent_id: Annotated[RecordId | None, Query(description="only subsidiaries of this account")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AccountOut]:
    """Accounts ordered by name."""
    return await session.run_sync(
        lambda s: repository.list_accounts(
            s, q=q, sector=sector, parent_id=parent_id, limit=limit, offset=offset
        )
    )


@router.get("/{account_id}", response_model=AccountOut, responses=errors(404))
async def get_account(session: SessionDep, account_id: PathId) -> AccountOut:
    return await session.run_sync(repository.get_account, account_id)


@router.get("/{account_id}/profile", response_model=AccountProfile, responses=errors(404))
async def account_profile(session: SessionDep, account_id: PathId) -> AccountProfile:
    """The account with parent, subsidiaries, contact count and deal metrics."""
    return await session.run_sync(analytics.account_profile, account_id)


_CREATED = links(
    "account_id",
    "GET /accounts/{account_id}",
    "PATCH /accounts/{account_id}",
    "GET /accounts/{account_id}/profile",
)


@router.post(
    "",
    response_model=AccountOut,
    status_code=status.HTTP_201_CREATED,
    responses={201: {"links": _CREATED}, **errors(400, 409)},
)
async def create_account(session: SessionDep, body: AccountCreate) -> AccountOut:
    """409 if the name is taken (any case) or the parent does not exist."""
    return await session.run_sync(repository.create_account, body)


@router.patch("/{account_id}", response_model=AccountOut, responses=errors(400, 404, 409))
async def update_account(session: SessionDep, account_id: PathId, body: AccountUpdate) -> AccountOut:
    """Change only the fields sent. 409 if the name is taken, the parent does not exist or would
    make the account its own ancestor."""
    return await session.run_sync(repository.update_account, account_id, body)
