"""Workflows the CRM asks for, written in the transaction of the record that needs them.

The transactional-outbox pattern: a reminder, an approved email or a won deal inserts a `pending`
:class:`crm.models.WorkflowRun` beside itself, so the request is committed exactly when the
record is. Whoever can reach Temporal then starts it under its `workflow_id` and marks it
`started`: the app right after the commit, and the worker's periodic dispatch for any it missed.
Temporal refuses a second start of a running workflow id, so the two never start it twice.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm.models import WorkflowRun
from crm.schemas import WorkflowKind, WorkflowRunOut, WorkflowRunStatus


def request(
    session: Session,
    kind: WorkflowKind,
    record_id: int,
    *,
    deal_id: int | None = None,
    reminder_id: int | None = None,
    outbox_id: int | None = None,
) -> WorkflowRunOut:
    """Ask for a workflow of `kind` for record `record_id` (the reminder, outbox message or deal)
    in the caller's transaction. Its id is `<kind>-<record id>-<8 hex digits>`: unique on the
    cluster even when the database is reset and ids start again, while Temporal still remembers
    the workflows of the old ones."""
    workflow_id = f"{kind}-{record_id}-{uuid.uuid4().hex[:8]}"
    run = WorkflowRun(
        workflow_id=workflow_id, kind=kind, deal_id=deal_id, reminder_id=reminder_id, outbox_id=outbox_id
    )
    session.add(run)
    session.flush()
    session.refresh(run)
    return WorkflowRunOut.model_validate(run)


def pending(
    session: Session, limit: int = 500, workflow_ids: list[str] | None = None
) -> list[WorkflowRunOut]:
    """Requested workflows not started yet, oldest first (at most `limit`); only those among
    `workflow_ids` when given."""
    stmt = select(WorkflowRun).where(WorkflowRun.status == "pending")
    if workflow_ids is not None:
        stmt = stmt.where(WorkflowRun.workflow_id.in_(workflow_ids))
    rows = session.scalars(stmt.order_by(WorkflowRun.id).limit(limit)).all()
    return [WorkflowRunOut.model_validate(r) for r in rows]


def set_status(session: Session, workflow_id: str, status: WorkflowRunStatus) -> None:
    """Record that `workflow_id` was started (stamps `started_at`), completed, cancelled or failed.
    An unknown id is ignored (a workflow started by hand has no row)."""
    values: dict[str, object] = {"status": status}
    if status == "started":
        values["started_at"] = dt.datetime.now(dt.UTC)
    session.execute(update(WorkflowRun).where(WorkflowRun.workflow_id == workflow_id).values(**values))


def status_of(session: Session, workflow_id: str) -> WorkflowRunStatus | None:
    """The recorded status of `workflow_id`, or None when the CRM did not ask for it."""
    status: WorkflowRunStatus | None = session.scalar(
        select(WorkflowRun.status).where(WorkflowRun.workflow_id == workflow_id)
    )
    return status


#: The record a workflow of each kind is for: a reminder, an outbox message, or a deal.
RECORD_COLUMN = {
    "reminder": WorkflowRun.reminder_id,
    "email": WorkflowRun.outbox_id,
    "onboarding": WorkflowRun.deal_id,
    "sequence": WorkflowRun.deal_id,
}


def workflow_ids_of(session: Session, kind: WorkflowKind, record_ids: list[int]) -> list[str]:
    """The ids of the latest workflow of `kind` asked for each of `record_ids`, in their order
    (records without one are left out); one query."""
    if not record_ids:
        return []
    column = RECORD_COLUMN[kind]
    rows = session.execute(
        select(column, WorkflowRun.workflow_id)
        .where(WorkflowRun.kind == kind, column.in_(record_ids))
        .order_by(WorkflowRun.id)
    ).all()
    latest = dict(rows)  # ordered by id: a later request of the same record wins
    return [latest[i] for i in record_ids if i in latest]


def workflow_id_of(session: Session, kind: WorkflowKind, record_id: int) -> str | None:
    """The id of the latest workflow of `kind` asked for record `record_id`, or None."""
    found = workflow_ids_of(session, kind, [record_id])
    return found[0] if found else None


def for_deal(session: Session, deal_id: int) -> list[WorkflowRunOut]:
    """The workflows asked for a deal (its reminders', emails', sequence and onboarding), newest
    first."""
    rows = session.scalars(
        select(WorkflowRun).where(WorkflowRun.deal_id == deal_id).order_by(WorkflowRun.id.desc())
    ).all()
    return [WorkflowRunOut.model_validate(r) for r in rows]
