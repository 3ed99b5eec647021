"""The outbox: approved emails on their way out, one row per approval.

`enqueue` writes the message and the request for its delivery workflow in the caller's
transaction, keyed by the approval (`idempotency_key`): the same approval enqueues one message,
however often it is retried. Delivery itself (SMTP) is an activity of `workflows`; here are only
the row's states: queued -> sent, or failed with the reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from crm import workflow_runs
from crm.errors import NotFound
from crm.models import OutboxMessage
from crm.schemas import OutboxMessageOut, OutboxStatus, Page

#: Domain part of the Message-IDs Flowstate writes (RFC 5322 msg-id: `<left@right>`).
MESSAGE_ID_DOMAIN = "flowstate.local"


def message_id_for(idempotency_key: str) -> str:
    """The RFC 5322 Message-ID of the email an approval sends: the same key gives the same id, so a
    retried delivery carries the id of the first attempt and a receiver can drop the duplicate."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{MESSAGE_ID_DOMAIN}>"


def enqueue(
    session: Session,
    idempotency_key: str,
    *,
    subject: str,
    body: str,
    to_addr: str | None,
    rep_id: int | None = None,
    account_id: int | None = None,
    deal_id: int | None = None,
    thread_id: str | None = None,
) -> tuple[OutboxMessageOut, bool]:
    """Queue an email and ask for its delivery workflow; returns (message, created). A key already
    queued writes nothing and returns the earlier message with False."""
    stmt = (
        insert(OutboxMessage)
        .values(
            idempotency_key=idempotency_key,
            message_id=message_id_for(idempotency_key),
            to_addr=to_addr,
            subject=subject,
            body=body,
            rep_id=rep_id,
            account_id=account_id,
            deal_id=deal_id,
            thread_id=thread_id,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(OutboxMessage.id)
    )
    new_id = session.execute(stmt).scalar()
    if new_id is None:
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))
        assert row is not None
        return OutboxMessageOut.model_validate(row), False
    workflow_runs.request(session, "email", new_id, deal_id=deal_id, outbox_id=new_id)
    return OutboxMessageOut.model_validate(session.get(OutboxMessage, new_id)), True


def lock(session: Session, outbox_id: int) -> OutboxMessage:
    """The message row, locked for this transaction (one delivery attempt at a time).
    Raises NotFound("outbox message", id)."""
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update())
    if row is None:
        raise NotFound("outbox message", outbox_id)
    return row


def get(session: Session, outbox_id: int) -> OutboxMessageOut:
    """One message; NotFound("outbox message", id)."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None:
        raise NotFound("outbox message", outbox_id)
    return OutboxMessageOut.model_validate(row)


def mark(session: Session, outbox_id: int, status: OutboxStatus, error: str | None = None) -> None:
    """Record an attempt's outcome: `sent` stamps `sent_at`; `failed` keeps `error`; `queued`
    (a failed attempt that will be retried) counts the attempt and keeps the error."""
    row = lock(session, outbox_id)
    row.attempts = row.attempts + 1
    row.status = status
    row.last_error = error
    if status == "sent":
        row.sent_at = dt.datetime.now(dt.UTC)
    session.flush()


def list_messages(
    session: Session,
    *,
    status: OutboxStatus | None = None,
    deal_id: int | None = None,
    rep_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    scope: ColumnElement[bool] | None = None,
) -> Page[OutboxMessageOut]:
    """Messages newest first; each argument narrows the list (`scope`: the caller's,
    `crm.access.owned_condition`)."""
    stmt = select(OutboxMessage)
    if scope is not None:
        stmt = stmt.where(scope)
    for col, val in (
        (OutboxMessage.status, status),
        (OutboxMessage.deal_id, deal_id),
        (OutboxMessage.rep_id, rep_id),
    ):
        if val is not None:
            stmt = stmt.where(col == val)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(limit).offset(offset)).all()
    items = [OutboxMessageOut.model_validate(r) for r in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)
