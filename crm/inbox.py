"""Each person's inbox: reminders that fell due, drafts and actions awaiting approval, alerts,
digests and reports (the agent-inbox pattern: a card to accept, edit, reject or dismiss).

Filing is idempotent on `dedupe_key` (a retried activity files one item); deciding is a state
change under a row lock, so two concurrent decisions on one item cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from contracts.notifications import Notification
from crm.errors import Conflict, NotFound
from crm.models import InboxItem
from crm.schemas import InboxItemOut, InboxKind, InboxStatus, Page

#: Which decisions each kind of item takes, and the status each leads to.
DECISIONS: dict[str, dict[str, InboxStatus]] = {
    "reminder": {"done": "done", "snooze": "snoozed", "dismiss": "dismissed"},
    "draft": {"approve": "approved", "edit": "approved", "reject": "rejected"},
    "action": {"approve": "approved", "edit": "approved", "reject": "rejected"},
    "alert": {"done": "done", "dismiss": "dismissed"},
    "digest": {"done": "done", "dismiss": "dismissed"},
    "report": {"done": "done", "dismiss": "dismissed"},
}


def file_item(
    session: Session,
    *,
    recipient: str,
    kind: InboxKind,
    title: str,
    body: str = "",
    rep_id: int | None = None,
    action: dict[str, Any] | None = None,
    reminder_id: int | None = None,
    deal_id: int | None = None,
    account_id: int | None = None,
    workflow_id: str | None = None,
    dedupe_key: str | None = None,
) -> tuple[InboxItemOut, bool]:
    """File an item for `recipient` (a person's name); returns (item, created). With a
    `dedupe_key` already filed, nothing is written and the earlier item comes back with False."""
    values = {
        "recipient": recipient,
        "kind": kind,
        "title": title,
        "body": body,
        "rep_id": rep_id,
        "action": action,
        "reminder_id": reminder_id,
        "deal_id": deal_id,
        "account_id": account_id,
        "workflow_id": workflow_id,
        "dedupe_key": dedupe_key,
    }
    stmt = insert(InboxItem).values(**values)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    new_id = session.execute(stmt.returning(InboxItem.id)).scalar()
    if new_id is None:
        row = session.scalar(select(InboxItem).where(InboxItem.dedupe_key == dedupe_key))
        assert row is not None
        return InboxItemOut.model_validate(row), False
    row = session.get(InboxItem, new_id)
    return InboxItemOut.model_validate(row), True


def is_filed(session: Session, dedupe_key: str) -> bool:
    """Whether an item with this dedupe key exists."""
    return session.scalar(select(InboxItem.id).where(InboxItem.dedupe_key == dedupe_key)) is not None


def notification_of(item: InboxItemOut) -> Notification:
    """The live notification of a newly filed item (`contracts.notifications`)."""
    return Notification(
        recipient=item.recipient,
        rep_id=item.rep_id,
        kind=item.kind,
        title=item.title,
        body=item.body,
        item_id=item.id,
        reminder_id=item.reminder_id,
        deal_id=item.deal_id,
    )


def list_items(
    session: Session,
    *,
    recipient: str | None = None,
    rep_id: int | None = None,
    status: InboxStatus | None = "open",
    kind: InboxKind | None = None,
    deal_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    scope: ColumnElement[bool] | None = None,
) -> Page[InboxItemOut]:
    """Items newest first; each argument narrows the list (`status=None`: every status).
    `recipient` matches the person's name case-insensitively; `scope` is the caller's
    (`crm.access.inbox_condition`)."""
    stmt = select(InboxItem)
    if scope is not None:
        stmt = stmt.where(scope)
    if recipient is not None:
        stmt = stmt.where(func.lower(InboxItem.recipient) == recipient.strip().lower())
    for col, val in (
        (InboxItem.rep_id, rep_id),
        (InboxItem.status, status),
        (InboxItem.kind, kind),
        (InboxItem.deal_id, deal_id),
    ):
        if val is not None:
            stmt = stmt.where(col == val)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(InboxItem.created_at.desc(), InboxItem.id.desc()).limit(limit).offset(offset)
    ).all()
    return Page(items=[InboxItemOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


def lock_open_item(session: Session, item_id: int, decision: str) -> InboxItem:
    """The item, locked for this transaction, checked to be open and to take `decision`.
    Raises NotFound("inbox item", id); Conflict when it was already decided or the decision does
    not apply to its kind (e.g. approving a reminder)."""
    row = session.scalar(select(InboxItem).where(InboxItem.id == item_id).with_for_update())
    if row is None:
        raise NotFound("inbox item", item_id)
    if row.status != "open":
        raise Conflict(f"inbox item {item_id} is already {row.status}")
    if decision not in DECISIONS[row.kind]:
        allowed = ", ".join(DECISIONS[row.kind])
        raise Conflict(f"a {row.kind} item takes {allowed}, not {decision}")
    return row


def close_item(
    session: Session, row: InboxItem, decision: str, actor: str | None, result: dict[str, Any] | None = None
) -> InboxItemOut:
    """Record `decision` on a row from :func:`lock_open_item` (status, who, when, result)."""
    row.status = DECISIONS[row.kind][decision]
    row.decided_by = actor
    row.decided_at = dt.datetime.now(dt.UTC)
    if result is not None:
        row.result = result
    session.flush()
    session.refresh(row)
    return InboxItemOut.model_validate(row)


def close_open_for_reminder(
    session: Session, reminder_id: int, status: InboxStatus, actor: str | None
) -> int:
    """Close every open item of a reminder (it was completed, cancelled or rescheduled
    elsewhere); returns how many were closed."""
    rows = session.scalars(
        select(InboxItem).where(InboxItem.reminder_id == reminder_id, InboxItem.status == "open")
    ).all()
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        row.status = status
        row.decided_by = actor
        row.decided_at = now
    session.flush()
    return len(rows)
