"""`/api/events`: the append-only log of interactions and system events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import Limit, Offset, QueryId, QueryText, SessionDep
from app.api.responses import errors
from contracts.fields import Instant, Text
from crm import repository
from crm.schemas import EventCreate, EventOut, Page

router = APIRouter(prefix="/events", tags=["events"], responses=errors(422, 503))


@router.get("", response_model=Page[EventOut])
async def list_events(
    session: SessionDep,
    kind: Annotated[Text | None, Query(description='exact kind, or a prefix ending in "*"')] = None,
    account_id: QueryId = None,
    deal_id: QueryId = None,
    thread_id: QueryText = None,
    actor: QueryText = None,
    since: Annotated[
        Instant | None, Query(description="occurred at or after (ISO time, with offset)")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[EventOut]:
    """Events, newest first."""
    return await session.run_sync(
        lambda s: repository.list_events(
            s,
            kind=kind,
            account_id=account_id,
            deal_id=deal_id,
            thread_id=thread_id,
            actor=actor,
            since=since,
            limit=limit,
            offset=offset,
        )
    )


@router.post("", response_model=EventOut, status_code=status.HTTP_201_CREATED, responses=errors(400, 409))
async def append_event(session: SessionDep, body: EventCreate) -> EventOut:
    """Append an event; 409 for an unknown account/deal id."""
    return await session.run_sync(repository.append_event, body)
