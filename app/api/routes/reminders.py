"""`/api/reminders`: follow-ups due at a time, escalated when they pass."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import Limit, Offset, SessionDep
from crm import repository
from crm.schemas import Page, ReminderCreate, ReminderOut, ReminderStatus, ReminderUpdate

router = APIRouter(prefix="/reminders", tags=["reminders"])


@router.get("", response_model=Page[ReminderOut])
async def list_reminders(
    session: SessionDep,
    rep_id: int | None = None,
    account_id: int | None = None,
    deal_id: int | None = None,
    status: ReminderStatus | None = None,
    due_before: Annotated[dt.datetime | None, Query(description="due strictly before (ISO time)")] = None,
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


@router.get("/{reminder_id}", response_model=ReminderOut)
async def get_reminder(session: SessionDep, reminder_id: int) -> ReminderOut:
    return await session.run_sync(repository.get_reminder, reminder_id)


@router.post("", response_model=ReminderOut, status_code=status.HTTP_201_CREATED)
async def create_reminder(session: SessionDep, body: ReminderCreate) -> ReminderOut:
    """`due_at` must carry a timezone; 422 for an unknown rep/account/deal id."""
    return await session.run_sync(repository.create_reminder, body)


@router.patch("/{reminder_id}", response_model=ReminderOut)
async def update_reminder(session: SessionDep, reminder_id: int, body: ReminderUpdate) -> ReminderOut:
    return await session.run_sync(repository.update_reminder, reminder_id, body)
