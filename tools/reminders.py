"""Reminders over time: what happens when one falls due (who is told, how), and the changes a
person makes to one (done, snooze, reschedule, delete), with what its workflow must hear.

Used by the workflow activities and by the app; sync functions over a `Session`, each one
transaction. The reminder row is the truth; the workflow's signals only wake it early.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.notifications import Notification
from crm import inbox, outbox, repository, workflow_runs
from crm.errors import NotFound
from crm.models import Deal, Reminder, SalesRep
from crm.schemas import EventCreate, ReminderOut

#: Reminder statuses that are still waiting for someone.
OPEN_STATUSES = ("pending", "escalated")
#: A reminder due within this many seconds counts as due (timers and clocks differ by a little).
DUE_TOLERANCE_S = 1.0
#: Who is told when a reminder has no rep and no deal owner.
UNASSIGNED = "Unassigned"


class FireResult(BaseModel):
    """What firing found: `fired` (notified; `outbox_id` when an email was queued, `item_id` the
    inbox item), `not_due` (moved later, to `due_at`), or `closed` (done, cancelled or gone).
    `notification` is set only when this call filed the item (not on a repeat)."""

    status: Literal["fired", "not_due", "closed"]
    due_at: dt.datetime | None = None
    outbox_id: int | None = None
    email_workflow_id: str | None = None
    item_id: int | None = None
    notification: Notification | None = None


class Person(BaseModel):
    """Who a notification goes to: a name, their rep id (None for a manager who is not a rep)
    and email address (None: no email)."""

    name: str
    rep_id: int | None = None
    email: str | None = None


def rep_person(session: Session, rep_id: int | None) -> Person:
    """The rep `rep_id` as a Person; UNASSIGNED for None or an unknown id."""
    rep = session.get(SalesRep, rep_id) if rep_id is not None else None
    if rep is None:
        return Person(name=UNASSIGNED)
    return Person(name=rep.name, rep_id=rep.id, email=rep.email)


def owner_of(session: Session, reminder: Reminder) -> Person:
    """The reminder's rep, else its deal's rep, else UNASSIGNED."""
    rep_id = reminder.rep_id
    if rep_id is None and reminder.deal_id is not None:
        rep_id = session.scalar(select(Deal.rep_id).where(Deal.id == reminder.deal_id))
    return rep_person(session, rep_id)


def manager_of(session: Session, owner: Person) -> Person | None:
    """The owner's manager (by the rep's `manager` name; their address when the manager is also a
    rep), or None when the owner has none."""
    if owner.rep_id is None:
        return None
    name = session.scalar(select(SalesRep.manager).where(SalesRep.id == owner.rep_id))
    if not name:
        return None
    as_rep = session.scalar(select(SalesRep).where(SalesRep.name == name))
    return Person(name=name, rep_id=as_rep.id if as_rep else None, email=as_rep.email if as_rep else None)


def local_now(
    session: Session, rep_id: int | None, *, today: dt.date | None = None, now: dt.datetime | None = None
) -> dt.datetime:
    """The rep's wall clock: `now` (default: the clock) in the rep's time zone (UTC for no rep,
    an unknown rep or an unknown zone), aware. `today` replaces the date and keeps the time of
    day (a fixed date for evaluations and demos: `FLOWSTATE_TODAY`)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = session.scalar(select(SalesRep.time_zone).where(SalesRep.id == rep_id)) if rep_id else None
    try:
        zone = ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = (now or dt.datetime.now(dt.UTC)).astimezone(zone)
    if today is not None:
        local = local.replace(year=today.year, month=today.month, day=today.day)
    return local


def _same_instant(a: dt.datetime, b: dt.datetime) -> bool:
    return abs((a - b).total_seconds()) < 0.001


def fire(
    session: Session,
    reminder_id: int,
    due_at: dt.datetime,
    level: int,
    notify: Literal["owner", "manager"],
    *,
    now: dt.datetime | None = None,
) -> FireResult:
    """Notify about a reminder that fell due (level 0) or is still unacknowledged at rung `level`.

    Re-reads the reminder: done, cancelled or deleted -> `closed`; moved to a later time than
    `due_at` -> `not_due` with the new time. Otherwise files an inbox item for the owner (or, for a
    `manager` rung, the owner's manager; the owner again when there is none), writes an Event
    "reminder.fired" / "reminder.escalated", stamps the reminder (fired_at, escalation_level,
    status "escalated" once a manager is told) and queues an email when the person has an
    address. Idempotent per (reminder, due time, level): a repeat files and queues nothing new
    and returns the same ids, without a notification.
    """
    now = now or dt.datetime.now(dt.UTC)
    reminder = session.scalar(select(Reminder).where(Reminder.id == reminder_id).with_for_update())
    if reminder is None or reminder.status not in OPEN_STATUSES:
        return FireResult(status="closed")
    if not _same_instant(reminder.due_at, due_at):
        if (reminder.due_at - now).total_seconds() > DUE_TOLERANCE_S:
            return FireResult(status="not_due", due_at=reminder.due_at)
        due_at = reminder.due_at
    owner = owner_of(session, reminder)
    person = owner
    if notify == "manager":
        person = manager_of(session, owner) or owner
    overdue = level > 0
    if person is not owner:
        title = f"Overdue reminder of {owner.name}: {reminder.message}"
    elif overdue:
        title = f"Still open: {reminder.message}"
    else:
        title = f"Reminder: {reminder.message}"
    body = f"Due {reminder.due_at.isoformat(timespec='minutes')}." + (
        f" Not acknowledged after {_ago(now - reminder.due_at)}." if overdue else ""
    )
    key = f"reminder:{reminder.id}:{due_at.isoformat()}:{level}"
    item, created = inbox.file_item(
        session,
        recipient=person.name,
        rep_id=person.rep_id,
        kind="reminder",
        title=title,
        body=body,
        reminder_id=reminder.id,
        deal_id=reminder.deal_id,
        account_id=reminder.account_id,
        workflow_id=workflow_runs.workflow_id_of(session, "reminder", reminder.id),
        dedupe_key=key,
    )
    outbox_id: int | None = None
    email_workflow: str | None = None
    if person.email:
        message, _ = outbox.enqueue(
            session,
            key,
            subject=title[:300],
            body=f"{title}\n\n{body}\n\n-- Flowstate",
            to_addr=person.email,
            rep_id=owner.rep_id,
            account_id=reminder.account_id,
            deal_id=reminder.deal_id,
        )
        outbox_id = message.id
        email_workflow = workflow_runs.workflow_id_of(session, "email", message.id)
    if created:
        if reminder.fired_at is None:
            reminder.fired_at = now
        reminder.escalation_level = level
        if person is not owner:
            reminder.status = "escalated"
        repository.append_event(
            session,
            EventCreate(
                kind="reminder.escalated" if overdue else "reminder.fired",
                actor="flowstate",
                account_id=reminder.account_id,
                deal_id=reminder.deal_id,
                payload={
                    "reminder_id": reminder.id,
                    "level": level,
                    "recipient": person.name,
                    "item_id": item.id,
                },
            ),
        )
    notification = inbox.notification_of(item) if created else None
    return FireResult(
        status="fired",
        due_at=due_at,
        outbox_id=outbox_id,
        email_workflow_id=email_workflow,
        item_id=item.id,
        notification=notification,
    )


def _ago(delta: dt.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 86400:
        return f"{seconds // 86400} day(s)"
    if seconds >= 3600:
        return f"{seconds // 3600} hour(s)"
    if seconds >= 60:
        return f"{seconds // 60} minute(s)"
    return f"{seconds} second(s)"


Signal = Literal["close", "reschedule"]


class ReminderChange(BaseModel):
    """A change made to a reminder and what its workflow (`workflow_id`) must hear: `signal`
    "close" (with the final `status`) or "reschedule" (with the new `due_at`), or None.
    `onboarding_workflow_id`: the onboarding of the reminder's deal, to wake when a task closes."""

    model_config = ConfigDict(extra="forbid")

    reminder: ReminderOut | None
    workflow_id: str | None = None
    onboarding_workflow_id: str | None = None
    signal: Signal | None = None
    #: workflows to start (a reopened reminder gets a new one: its old one has ended)
    start: list[str] = []
    status: str | None = None
    due_at: dt.datetime | None = None


def complete(session: Session, reminder_id: int, actor: str | None, status: str = "done") -> ReminderChange:
    """Mark a reminder done (or cancelled) and close its open inbox items. NotFound."""
    row = session.get(Reminder, reminder_id)
    if row is None:
        raise NotFound("reminder", reminder_id)
    if row.status != status:
        repository.append_event(
            session,
            EventCreate(
                kind="reminder.status_changed",
                actor=actor,
                account_id=row.account_id,
                deal_id=row.deal_id,
                payload={"reminder_id": row.id, "from": row.status, "to": status},
            ),
        )
        row.status = status
    inbox.close_open_for_reminder(session, reminder_id, "done", actor)
    session.flush()
    return ReminderChange(
        **_ids(session, row.id, row.deal_id),
        reminder=ReminderOut.model_validate(row),
        signal="close",
        status=status,
    )


def snooze(session: Session, reminder_id: int, until: dt.datetime, actor: str | None) -> ReminderChange:
    """Put a reminder off until `until`: pending again at level 0, its open items snoozed."""
    row = session.get(Reminder, reminder_id)
    if row is None:
        raise NotFound("reminder", reminder_id)
    row.due_at = until
    row.status = "pending"
    row.escalation_level = 0
    inbox.close_open_for_reminder(session, reminder_id, "snoozed", actor)
    repository.append_event(
        session,
        EventCreate(
            kind="reminder.snoozed",
            actor=actor,
            account_id=row.account_id,
            deal_id=row.deal_id,
            payload={"reminder_id": row.id, "until": until.isoformat()},
        ),
    )
    session.flush()
    return ReminderChange(
        **_ids(session, row.id, row.deal_id),
        reminder=ReminderOut.model_validate(row),
        signal="reschedule",
        due_at=until,
    )


def change_of_update(session: Session, before: ReminderOut, after: ReminderOut) -> ReminderChange:
    """What a plain update (`PATCH /reminders/{id}`) means for the reminder's workflow: a closed
    status -> close; a new due time on an open reminder -> reschedule; a closed reminder opened
    again -> a new workflow (asked for here, in the update's transaction); else nothing."""
    ids = _ids(session, after.id, after.deal_id)
    if after.status in OPEN_STATUSES and before.status not in OPEN_STATUSES:
        run = workflow_runs.request(
            session, "reminder", after.id, deal_id=after.deal_id, reminder_id=after.id
        )
        return ReminderChange(reminder=after, start=[run.workflow_id])
    if after.status not in OPEN_STATUSES and before.status in OPEN_STATUSES:
        return ReminderChange(**ids, reminder=after, signal="close", status=after.status)
    if after.due_at != before.due_at and after.status in OPEN_STATUSES:
        return ReminderChange(**ids, reminder=after, signal="reschedule", due_at=after.due_at)
    return ReminderChange(reminder=after)


def _ids(session: Session, reminder_id: int, deal_id: int | None) -> dict[str, str | None]:
    """The workflow ids a change of this reminder concerns: its own, its deal's onboarding."""
    onboarding = workflow_runs.workflow_id_of(session, "onboarding", deal_id) if deal_id else None
    return {
        "workflow_id": workflow_runs.workflow_id_of(session, "reminder", reminder_id),
        "onboarding_workflow_id": onboarding,
    }


def delete(session: Session, reminder_id: int, actor: str | None) -> ReminderChange:
    """Delete a reminder (its inbox items and workflow request go with it). NotFound."""
    row = session.get(Reminder, reminder_id)
    if row is None:
        raise NotFound("reminder", reminder_id)
    repository.append_event(
        session,
        EventCreate(
            kind="reminder.deleted",
            actor=actor,
            account_id=row.account_id,
            deal_id=row.deal_id,
            payload={"reminder_id": row.id, "message": row.message},
        ),
    )
    ids = _ids(session, row.id, row.deal_id)  # before the delete takes the run rows with it
    session.delete(row)
    session.flush()
    return ReminderChange(**ids, reminder=None, signal="close", status="deleted")


def open_count(session: Session, reminder_ids: list[int]) -> int:
    """How many of `reminder_ids` are still open (pending or escalated); deleted ones are not."""
    if not reminder_ids:
        return 0
    rows = session.scalars(
        select(Reminder.id).where(Reminder.id.in_(reminder_ids), Reminder.status.in_(OPEN_STATUSES))
    ).all()
    return len(rows)
