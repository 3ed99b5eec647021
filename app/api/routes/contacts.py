"""`/api/contacts`: people at accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import Limit, Offset, PathId, QueryId, SessionDep
from app.api.responses import errors, links
from contracts.fields import Text
from crm import repository
from crm.schemas import ContactCreate, ContactOut, ContactUpdate, Page

router = APIRouter(prefix="/contacts", tags=["contacts"], responses=errors(422, 503))


@router.get("", response_model=Page[ContactOut])
async def list_contacts(
    session: SessionDep,
    account_id: QueryId = None,
    q: Annotated[Text | None, Query(description="part of the name or email")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ContactOut]:
    """Contacts ordered by last name, first name."""
    return await session.run_sync(
        lambda s: repository.list_contacts(s, account_id=account_id, q=q, limit=limit, offset=offset)
    )


@router.get("/{contact_id}", response_model=ContactOut, responses=errors(404))
async def get_contact(session: SessionDep, contact_id: PathId) -> ContactOut:
    return await session.run_sync(repository.get_contact, contact_id)


@router.post(
    "",
    response_model=ContactOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"links": links("contact_id", "GET /contacts/{contact_id}", "PATCH /contacts/{contact_id}")},
        **errors(400, 409),
    },
)
async def create_contact(session: SessionDep, body: ContactCreate) -> ContactOut:
    """409 if the email is taken or the account does not exist."""
    return await session.run_sync(repository.create_contact, body)


@router.patch("/{contact_id}", response_model=ContactOut, responses=errors(400, 404, 409))
async def update_contact(session: SessionDep, contact_id: PathId, body: ContactUpdate) -> ContactOut:
    return await session.run_sync(repository.update_contact, contact_id, body)
