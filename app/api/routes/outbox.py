"""`/api/outbox`: approved emails and their delivery, newest first. On embedded defaults the SMTP
server is a local sink that keeps each message as an `.eml` file under the data directory: what
is listed here as sent is exactly what would have gone out.

Scope (`crm.access`): a message belongs to its deal's rep, else to its own `rep_id`; the caller
sees the messages of the reps they read (others are a 404)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from app.api.auth import CallerDep
from app.api.deps import Limit, Offset, PathId, QueryId, SessionDep
from app.api.responses import errors
from crm import access, outbox
from crm.models import OutboxMessage
from crm.schemas import OutboxMessageOut, OutboxStatus, Page

router = APIRouter(prefix="/outbox", tags=["outbox"], responses=errors(422, 503))


@router.get("", response_model=Page[OutboxMessageOut])
async def list_outbox(
    session: SessionDep,
    caller: CallerDep,
    status: OutboxStatus | None = None,
    deal_id: QueryId = None,
    rep_id: QueryId = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[OutboxMessageOut]:
    """Messages the caller sees, newest first: queued, sent (with `sent_at`) or failed (with
    `last_error`)."""
    scope = access.owned_condition(OutboxMessage, caller.read_rep_ids)
    return await session.run_sync(
        lambda s: outbox.list_messages(
            s, status=status, deal_id=deal_id, rep_id=rep_id, limit=limit, offset=offset, scope=scope
        )
    )


@router.get("/{message_id}", response_model=OutboxMessageOut, responses=errors(404))
async def get_message(session: SessionDep, caller: CallerDep, message_id: PathId) -> OutboxMessageOut:
    """The message; 404 when it does not exist or belongs to a rep the caller does not read."""

    def _get(s: Session) -> OutboxMessageOut:
        access.check_owned(s, caller, OutboxMessage, message_id, "outbox message")
        return outbox.get(s, message_id)

    return await session.run_sync(_get)
