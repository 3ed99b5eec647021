"""`/api/inbox`: what waits for a person (reminders that fell due, drafts and actions awaiting
approval, alerts, digests, reports), newest first, and their decisions on it.

Scope (`crm.access`): a caller sees the items for them (by name) and those of the reps they act
for (a rep: their own; a manager: their team's; an admin: all); others are a 404. Deciding an
item needs the caller to act for its deal's (else its) rep: 403 otherwise. The decision is the
caller's: `decided_by` and the actor of what it does (a stage change, an email) are theirs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from app.api.auth import CallerDep
from app.api.deps import AfterCommitDep, Limit, Offset, PathId, QueryId, SessionDep
from app.api.responses import errors
from contracts.fields import Text
from crm import access, inbox
from crm.errors import Conflict, Inconsistent, Invalid
from crm.schemas import InboxDecision, InboxItemOut, InboxKind, InboxStatus, Page
from tools import inbox as inbox_tools
from workflows.starts import requested_by

router = APIRouter(prefix="/inbox", tags=["inbox"], responses=errors(422, 503))


@router.get("", response_model=Page[InboxItemOut])
async def list_inbox(
    session: SessionDep,
    caller: CallerDep,
    recipient: Annotated[Text | None, Query(description="the person's name (a rep or a manager)")] = None,
    rep_id: QueryId = None,
    deal_id: QueryId = None,
    status: Annotated[InboxStatus | None, Query(description="default: open items only")] = "open",
    kind: InboxKind | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[InboxItemOut]:
    """Inbox items the caller sees, newest first (open ones unless `status` says otherwise)."""
    scope = access.inbox_condition(caller)
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
            scope=scope,
        )
    )


@router.post("/{item_id}", response_model=inbox_tools.Decided, responses=errors(400, 403, 404, 409))
async def decide(
    session: SessionDep, caller: CallerDep, item_id: PathId, body: InboxDecision, after: AfterCommitDep
) -> inbox_tools.Decided:
    """Decide an item: approve / edit (`edits` to the action's params) / reject a draft or action
    (the approved action runs once), done / snooze (`until`, else the configured snooze) a
    reminder, dismiss an alert, digest or report. 409 when the item was already decided or does
    not take that decision, or when its (edited) action is refused (naming the field: the action
    is the item's, so what refuses it is the data as it stands, not the request alone)."""

    def _decide(s: Session) -> inbox_tools.Decided:
        access.check_inbox_item(s, caller, item_id)
        edits = body.edits or {}
        if caller.act_rep_ids is not None and ("deal" in edits or "deal_id" in edits):
            # the scope was checked on the item's deal: an edit may not point the action elsewhere
            raise Inconsistent("edits", "an edit cannot change the action's deal; propose it on that deal")
        try:
            return inbox_tools.decide(s, item_id, body, actor=caller.actor)
        except Invalid as exc:
            if isinstance(exc, Conflict) or body.decision not in ("approve", "edit"):
                raise
            raise Inconsistent(exc.field, exc.reason) from None

    decided = await session.run_sync(_decide)
    if decided.result is not None:
        after.start(requested_by(decided.result))
    if decided.change is not None:
        after.reminder_changed(decided.change)
    return decided
