"""`/api/inbox`: what waits for a person (reminders that fell due, drafts and actions awaiting
approval, alerts, digests, reports), newest first, and their decisions on it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AfterCommitDep, Limit, Offset, PathId, QueryId, SessionDep
from app.api.responses import errors
from contracts.fields import Text
from crm import inbox
from crm.schemas import InboxDecision, InboxItemOut, InboxKind, InboxStatus, Page
from tools import inbox as inbox_tools
from workflows.starts import requested_by

router = APIRouter(prefix="/inbox", tags=["inbox"], responses=errors(422, 503))


@router.get("", response_model=Page[InboxItemOut])
async def list_inbox(
    session: SessionDep,
    recipient: Annotated[Text | None, Query(description="the person's name (a rep or a manager)")] = None,
    rep_id: QueryId = None,
    deal_id: QueryId = None,
    status: Annotated[InboxStatus | None, Query(description="default: open items only")] = "open",
    kind: InboxKind | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[InboxItemOut]:
    """Inbox items, newest first (open ones unless `status` says otherwise)."""
    return await session.run_sync(
        lambda s: inbox.list_items(
            s,
            recipient=recipient,
            rep_id=rep_id,
            status=status,
            kind=kind,
            deal_id=deal_id,
            limit=limit,
            offset=offset,
        )
    )


@router.post("/{item_id}", response_model=inbox_tools.Decided, responses=errors(400, 404, 409))
async def decide(
    session: SessionDep, item_id: PathId, body: InboxDecision, after: AfterCommitDep
) -> inbox_tools.Decided:
    """Decide an item: approve / edit (`edits` to the action's params) / reject a draft or action
    (the approved action runs once), done / snooze (`until`, else the configured snooze) a
    reminder, dismiss an alert, digest or report. 409 when the item was already decided or does
    not take that decision; 422 naming the field when the (edited) action is refused."""
    decided = await session.run_sync(lambda s: inbox_tools.decide(s, item_id, body, actor=body.actor))
    if decided.result is not None:
        after.start(requested_by(decided.result))
    if decided.change is not None:
        after.reminder_changed(decided.change)
    return decided
