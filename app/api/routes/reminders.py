"""`/api/reminders`: follow-ups due at a time. Each has a workflow on Temporal that notifies its
owner at the due time and escalates while nobody acknowledges it; changing a reminder here tells
that workflow (after the commit).

Scope (`crm.access`): a reminder belongs to its deal's rep, else to its own `rep_id`; the caller
sees the reminders of the reps they read (others are a 404) and changes those of the reps they
act for (403 otherwise). A new reminder of a rep is theirs when neither `deal_id` nor `rep_id` is
given; one on a deal or for a rep the caller does not act for is a 403 naming the field."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from app.api.auth import CallerDep
from app.api.deps import AfterCommitDep, Limit, Offset, PathId, QueryId, SessionDep
from app.api.responses import errors, links
from contracts.fields import Instant
from crm import access, repository, workflow_runs
from crm.models import Reminder
from crm.schemas import Page, ReminderCreate, ReminderOut, ReminderStatus, ReminderUpdate
from tools import reminders as reminder_tools

router = APIRouter(prefix="/reminders", tags=["reminders"], responses=errors(422, 503))


@router.get("", response_model=Page[ReminderOut])
async def list_reminders(
    session: SessionDep,
    caller: CallerDep,
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
    """Reminders the caller sees, earliest due first."""
    scope = access.owned_condition(Reminder, caller.read_rep_ids)
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
            scope=scope,
        )
    )


@router.get("/{reminder_id}", response_model=ReminderOut, responses=errors(404))
async def get_reminder(session: SessionDep, caller: CallerDep, reminder_id: PathId) -> ReminderOut:
    """The reminder; 404 when it does not exist or belongs to a rep the caller does not read."""

    def _get(s: Session) -> ReminderOut:
        access.check_owned(s, caller, Reminder, reminder_id, "reminder")
        return repository.get_reminder(s, reminder_id)

    return await session.run_sync(_get)


@router.post(
    "",
    response_model=ReminderOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {
            "links": links("reminder_id", "GET /reminders/{reminder_id}", "PATCH /reminders/{reminder_id}")
        },
        **errors(400, 403, 409),
    },
)
async def create_reminder(
    session: SessionDep, caller: CallerDep, body: ReminderCreate, after: AfterCommitDep
) -> ReminderOut:
    """`due_at` must carry a timezone; 409 for an unknown rep/account/deal id; 403 for a deal or
    rep the caller does not act for. Its workflow starts once the reminder is stored."""

    def _create(s: Session) -> tuple[ReminderOut, str | None]:
        data = access.scoped_refs(s, caller, body)
        out = repository.create_reminder(s, data)
        return out, workflow_runs.workflow_id_of(s, "reminder", out.id)

    out, workflow_id = await session.run_sync(_create)
    after.start([workflow_id] if workflow_id else [])
    return out


@router.patch("/{reminder_id}", response_model=ReminderOut, responses=errors(400, 403, 404))
async def update_reminder(
    session: SessionDep, caller: CallerDep, reminder_id: PathId, body: ReminderUpdate, after: AfterCommitDep
) -> ReminderOut:
    """A new `due_at` reschedules the reminder's notifications; status done or cancelled stops
    them."""

    def _update(s: Session) -> reminder_tools.ReminderChange:
        access.check_owned(s, caller, Reminder, reminder_id, "reminder", act=True)
        before = repository.get_reminder(s, reminder_id)
        return reminder_tools.change_of_update(s, before, repository.update_reminder(s, reminder_id, body))

    change = await session.run_sync(_update)
    after.reminder_changed(change)
    assert change.reminder is not None
    return change.reminder


@router.delete("/{reminder_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403, 404))
async def delete_reminder(
    session: SessionDep, caller: CallerDep, reminder_id: PathId, after: AfterCommitDep
) -> None:
    """Delete the reminder; its notifications stop."""

    def _delete(s: Session) -> reminder_tools.ReminderChange:
        access.check_owned(s, caller, Reminder, reminder_id, "reminder", act=True)
        return reminder_tools.delete(s, reminder_id, caller.actor)

    change = await session.run_sync(_delete)
    after.reminder_changed(change)
