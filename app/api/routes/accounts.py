"""`/api/accounts`: customer and prospect companies.

Scope (`crm.access`): a caller reads the accounts where a deal they read is, and the accounts
with no deal at all (prospects nobody works yet); others are a 404. Any signed-in user may add an
account (a rep adds prospects); changing one needs a deal on it the caller acts for, or no deal
on it at all (403 otherwise). An account's profile counts only the deals the caller reads; its
documents are those the caller reads (`access.documents_condition`): on a deal of the account,
only when the caller reads that deal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from app.api.auth import CallerDep
from app.api.deps import Limit, Offset, PathId, QueryText, SessionDep
from app.api.responses import errors, links
from contracts.fields import RecordId, Text
from crm import access, analytics, documents, repository
from crm.schemas import (
    AccountCreate,
    AccountOut,
    AccountProfile,
    AccountUpdate,
    DocumentOut,
    Page,
)

router = APIRouter(prefix="/accounts", tags=["accounts"], responses=errors(422, 503))


@router.get("", response_model=Page[AccountOut])
async def list_accounts(
    session: SessionDep,
    caller: CallerDep,
    q: Annotated[Text | None, Query(description="part of the name, any case")] = None,
    sector: QueryText = None,
    parent_id: Annotated[RecordId | None, Query(description="only subsidiaries of this account")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AccountOut]:
    """Accounts the caller reads, ordered by name."""
    scope = access.accounts_condition(caller.read_rep_ids)
    return await session.run_sync(
        lambda s: repository.list_accounts(
            s, q=q, sector=sector, parent_id=parent_id, limit=limit, offset=offset, scope=scope
        )
    )


@router.get("/{account_id}", response_model=AccountOut, responses=errors(404))
async def get_account(session: SessionDep, caller: CallerDep, account_id: PathId) -> AccountOut:
    """The account; 404 when it does not exist or is outside what the caller reads."""

    def _get(s: Session) -> AccountOut:
        access.readable_account(s, caller, account_id)
        return repository.get_account(s, account_id)

    return await session.run_sync(_get)


@router.get("/{account_id}/profile", response_model=AccountProfile, responses=errors(404))
async def account_profile(session: SessionDep, caller: CallerDep, account_id: PathId) -> AccountProfile:
    """The account with parent, subsidiaries, contact count and the metrics of the deals on it
    that the caller reads."""

    def _profile(s: Session) -> AccountProfile:
        access.readable_account(s, caller, account_id)
        return analytics.account_profile(s, account_id, rep_ids=caller.read_rep_ids)

    return await session.run_sync(_profile)


@router.get("/{account_id}/documents", response_model=Page[DocumentOut], responses=errors(404))
async def account_documents(
    session: SessionDep, caller: CallerDep, account_id: PathId, limit: Limit = 50, offset: Offset = 0
) -> Page[DocumentOut]:
    """The documents (notes, emails, call summaries) on the account or on its deals that the
    caller reads, newest first: title, kind, link and the start of the text (the whole text comes
    with `GET /api/documents/search`). 404 when the account does not exist or is outside what the
    caller reads."""

    def _list(s: Session) -> Page[DocumentOut]:
        access.readable_account(s, caller, account_id)
        return documents.account_documents(s, account_id, caller.read_rep_ids, limit=limit, offset=offset)

    return await session.run_sync(_list)


_CREATED = links(
    "account_id",
    "GET /accounts/{account_id}",
    "PATCH /accounts/{account_id}",
    "GET /accounts/{account_id}/profile",
    "GET /accounts/{account_id}/documents",
)


@router.post(
    "",
    response_model=AccountOut,
    status_code=status.HTTP_201_CREATED,
    responses={201: {"links": _CREATED}, **errors(400, 409)},
)
async def create_account(session: SessionDep, body: AccountCreate) -> AccountOut:
    """Add an account (any signed-in user: a rep adds prospects). 409 if the name is taken (any
    case) or the parent does not exist."""
    return await session.run_sync(repository.create_account, body)


@router.patch("/{account_id}", response_model=AccountOut, responses=errors(400, 403, 404, 409))
async def update_account(
    session: SessionDep, caller: CallerDep, account_id: PathId, body: AccountUpdate
) -> AccountOut:
    """Change only the fields sent. 409 if the name is taken, the parent does not exist or would
    make the account its own ancestor; 403 when another rep works the account."""

    def _update(s: Session) -> AccountOut:
        access.check_account_action(s, caller, account_id)
        return repository.update_account(s, account_id, body)

    return await session.run_sync(_update)
