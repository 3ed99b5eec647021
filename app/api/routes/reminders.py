"""`/api/reminders`: follow-ups due at a time. Each has a workflow on Temporal that notifies its
owner at the due time and escalates while nobody acknowledges it; changing a reminder here tells
that workflow (after the commit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from app.api.deps import AfterCommitDep, Limit, Offset, PathId, QueryId, SessionDep
from app.api.responses import errors, links
from contracts.fields import Instant
from crm import repository, workflow_runs
from crm.schemas import Page, ReminderCreate, ReminderOut, ReminderStatus, ReminderUpdate
from tools import reminders as reminder_tools

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
async def create_reminder(session: SessionDep, body: ReminderCreate, after: AfterCommitDep) -> ReminderOut:
    """`due_at` must carry a timezone; 409 for an unknown rep/account/deal id. Its workflow starts
    once the reminder is stored."""

    def _create(s: Session) -> tuple[ReminderOut, str | None]:
        out = repository.create_reminder(s, body)
        return out, workflow_runs.workflow_id_of(s, "reminder", out.id)

    out, workflow_id = await session.run_sync(_create)
    after.start([workflow_id] if workflow_id else [])
    return out


@router.patch("/{reminder_id}", response_model=ReminderOut, responses=errors(400, 404))
async def update_reminder(
    session: SessionDep, reminder_id: PathId, body: ReminderUpdate, after: AfterCommitDep
) -> ReminderOut:
    """A new `due_at` reschedules the reminder's notifications; status done or cancelled stops
    them."""

    def _update(s: Session) -> reminder_tools.ReminderChange:
        before = repository.get_reminder(s, reminder_id)
        return reminder_tools.change_of_update(s, before, repository.update_reminder(s, reminder_id, body))

    change = await session.run_sync(_update)
    after.reminder_changed(change)
    assert change.reminder is not None
    return change.reminder


@router.delete("/{reminder_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_reminder(session: SessionDep, reminder_id: PathId, after: AfterCommitDep) -> None:
    """Delete the reminder; its notifications stop."""
    change = await session.run_sync(reminder_tools.delete, reminder_id, None)
    after.reminder_changed(change)
