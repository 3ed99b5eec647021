"""`/api/events`: the append-only log of interactions and system events."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import Limit, Offset, SessionDep
from crm import repository
from crm.schemas import EventCreate, EventOut, Page

router = APIRouter(prefix="/events", tags=["events"])


@router.get("", response_model=Page[EventOut])
async def list_events(
    session: SessionDep,
    kind: Annotated[str | None, Query(description='exact kind, or a prefix ending in "*"')] = None,
    account_id: int | None = None,
    deal_id: int | None = None,
    thread_id: str | None = None,
    actor: str | None = None,
    since: Annotated[dt.datetime | None, Query(description="occurred at or after (ISO time)")] = None,
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


@router.post("", response_model=EventOut, status_code=status.HTTP_201_CREATED)
async def append_event(session: SessionDep, body: EventCreate) -> EventOut:
    """Append an event; 422 for an unknown account/deal id."""
    return await session.run_sync(repository.append_event, body)
