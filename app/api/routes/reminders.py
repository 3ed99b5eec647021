"""`/api/reminders`: follow-ups due at a time, escalated when they pass."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import Limit, Offset, PathId, QueryId, SessionDep
from app.api.responses import errors, links
from contracts.fields import Instant
from crm import repository
from crm.schemas import Page, ReminderCreate, ReminderOut, ReminderStatus, ReminderUpdate

router = APIRouter(prefix="/reminders", tags=["reminders"], responses=errors(422, 503))


@router.get("", response_model=Page[ReminderOut])
async def list_reminders(
    session: SessionDep,
    rep_id: QueryId = None,
    account_id: QueryId = None,
    deal_id: QueryId = None,
    status: ReminderStatus | None = None,
    due_before: Annotated[
        Instant | None, Query(description="due strictly before (ISO time, with offset)")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ReminderOut]:
    """Reminders, earliest due first."""
    return await session.run_sync(
        lambda s: repository.list_reminders(
            s,
            rep_id=rep_id,
            account_id=account_id,
            deal_id=deal_id,
            status=status,
            due_before=due_before,
            limit=limit,
            offset=offset,
        )
    )


@router.get("/{reminder_id}", response_model=ReminderOut, responses=errors(404))
async def get_reminder(session: SessionDep, reminder_id: PathId) -> ReminderOut:
    return await session.run_sync(repository.get_reminder, reminder_id)


@router.post(
    "",
    response_model=ReminderOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {
            "links": links("reminder_id", "GET /reminders/{reminder_id}", "PATCH /reminders/{reminder_id}")
        },
        **errors(400, 409),
    },
)
async def create_reminder(session: SessionDep, body: ReminderCreate) -> ReminderOut:
    """`due_at` must carry a timezone; 409 for an unknown rep/account/deal id."""
    return await session.run_sync(repository.create_reminder, body)


@router.patch("/{reminder_id}", response_model=ReminderOut, responses=errors(400, 404))
async def update_reminder(session: SessionDep, reminder_id: PathId, body: ReminderUpdate) -> ReminderOut:
    return await session.run_sync(repository.update_reminder, reminder_id, body)
