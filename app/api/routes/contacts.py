"""`/api/contacts`: people at accounts.

Scope (`crm.access`): a contact follows their account: readable when the account is (a contact
with no account: by everyone), changed when the caller may change the account (403 otherwise).
Any signed-in user may add a contact to an account they read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from app.api.auth import CallerDep
from app.api.deps import Limit, Offset, PathId, QueryId, SessionDep
from app.api.responses import errors, links
from contracts.fields import Text
from crm import access, repository
from crm.schemas import ContactCreate, ContactOut, ContactUpdate, Page

router = APIRouter(prefix="/contacts", tags=["contacts"], responses=errors(422, 503))


@router.get("", response_model=Page[ContactOut])
async def list_contacts(
    session: SessionDep,
    caller: CallerDep,
    account_id: QueryId = None,
    q: Annotated[Text | None, Query(description="part of the name or email")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ContactOut]:
    """Contacts the caller reads, ordered by last name, first name."""
    scope = access.contacts_condition(caller.read_rep_ids)
    return await session.run_sync(
        lambda s: repository.list_contacts(
            s, account_id=account_id, q=q, limit=limit, offset=offset, scope=scope
        )
    )


@router.get("/{contact_id}", response_model=ContactOut, responses=errors(404))
async def get_contact(session: SessionDep, caller: CallerDep, contact_id: PathId) -> ContactOut:
    """The contact; 404 when they do not exist or their account is outside what the caller reads."""

    def _get(s: Session) -> ContactOut:
        access.check_contact(s, caller, contact_id)
        return repository.get_contact(s, contact_id)

    return await session.run_sync(_get)


@router.post(
    "",
    response_model=ContactOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"links": links("contact_id", "GET /contacts/{contact_id}", "PATCH /contacts/{contact_id}")},
        **errors(400, 409),
    },
)
async def create_contact(session: SessionDep, caller: CallerDep, body: ContactCreate) -> ContactOut:
    """409 if the email is taken or the account does not exist (or is outside what the caller
    reads: the same answer, so its existence is not disclosed)."""

    def _create(s: Session) -> ContactOut:
        if body.account_id is not None:
            access.check_account_ref(s, caller, body.account_id)
        return repository.create_contact(s, body)

    return await session.run_sync(_create)


@router.patch("/{contact_id}", response_model=ContactOut, responses=errors(400, 403, 404, 409))
async def update_contact(
    session: SessionDep, caller: CallerDep, contact_id: PathId, body: ContactUpdate
) -> ContactOut:
    """Change only the fields sent; 403 when another rep works the contact's account (or the
    account it is moved to)."""

    def _update(s: Session) -> ContactOut:
        access.check_contact(s, caller, contact_id, act=True)
        if body.account_id is not None:
            access.check_account_ref(s, caller, body.account_id)
            access.check_account_action(s, caller, body.account_id)
        return repository.update_contact(s, contact_id, body)

    return await session.run_sync(_update)
