"""`/api/outbox`: approved emails and their delivery, newest first. On embedded defaults the SMTP
server is a local sink that keeps each message as an `.eml` file under the data directory: what
is listed here as sent is exactly what would have gone out."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import Limit, Offset, PathId, QueryId, SessionDep
from app.api.responses import errors
from crm import outbox
from crm.schemas import OutboxMessageOut, OutboxStatus, Page

router = APIRouter(prefix="/outbox", tags=["outbox"], responses=errors(422, 503))


@router.get("", response_model=Page[OutboxMessageOut])
async def list_outbox(
    session: SessionDep,
    status: OutboxStatus | None = None,
    deal_id: QueryId = None,
    rep_id: QueryId = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[OutboxMessageOut]:
    """Messages, newest first: queued, sent (with `sent_at`) or failed (with `last_error`)."""
    return await session.run_sync(
        lambda s: outbox.list_messages(
            s, status=status, deal_id=deal_id, rep_id=rep_id, limit=limit, offset=offset
        )
    )


@router.get("/{message_id}", response_model=OutboxMessageOut, responses=errors(404))
async def get_message(session: SessionDep, message_id: PathId) -> OutboxMessageOut:
    return await session.run_sync(outbox.get, message_id)
