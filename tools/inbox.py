"""Deciding an inbox item: approve / edit / reject a draft or action (the approved action runs
exactly once, keyed by the item), done / snooze a reminder, dismiss an alert.

One transaction per decision, under the item's row lock: two clicks on Approve run the action
once, and the second gets a Conflict. Returns what the reminder's workflow must hear, if anything.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from config.files import load_reminders
from contracts import ProposedAction
from crm import inbox
from crm.errors import Invalid
from crm.schemas import InboxDecision, InboxItemOut
from tools import actions, reminders
from tools.deals import deal_of_action
from tools.reminders import ReminderChange


class Decided(BaseModel):
    """The item after the decision, the action's result (approve/edit), and the change its
    reminder's workflow must hear (done/snooze)."""

    item: InboxItemOut
    result: dict[str, Any] | None = None
    change: ReminderChange | None = None


def file_chat_action(
    session: Session, action: ProposedAction, *, recipient: str, thread_id: str, action_id: str
) -> InboxItemOut:
    """File the action a chat thread was waiting on in `recipient`'s inbox (kind "action"): a new
    message came before the decision, so the decision moves to the inbox, where approving it runs
    the action once (`decide`, key `inbox:<id>`). Idempotent per thread and action (dedupe key
    `chat:<thread_id>:<action_id>`): filing again returns the same item."""
    deal = deal_of_action(session, action)
    item, _ = inbox.file_item(
        session,
        recipient=recipient,
        kind="action",
        title=action.summary,
        body=f"Proposed in chat thread {thread_id}; moved here when a new message came before a decision.",
        rep_id=deal.rep_id if deal is not None else None,
        action=action.model_dump(mode="json"),
        deal_id=deal.id if deal is not None else None,
        account_id=deal.account_id if deal is not None else None,
        dedupe_key=f"chat:{thread_id}:{action_id}",
    )
    return item


def decide(
    session: Session,
    item_id: int,
    decision: InboxDecision,
    *,
    actor: str | None,
    now: dt.datetime | None = None,
    snooze_default: dt.timedelta | None = None,
) -> Decided:
    """Apply `decision` to inbox item `item_id`. Raises NotFound; Conflict when the item is not
    open or does not take that decision; Invalid("edits") / the action's own Invalid(field) when
    the (edited) action is refused, in which case nothing changes."""
    now = now or dt.datetime.now(dt.UTC)
    row = inbox.lock_open_item(session, item_id, decision.decision)
    result: dict[str, Any] | None = None
    change: ReminderChange | None = None
    if decision.decision in ("approve", "edit"):
        if row.action is None:
            raise Invalid("decision", f"inbox item {item_id} carries no action to approve")
        try:
            action = ProposedAction.model_validate(row.action)
        except ValidationError as exc:
            raise Invalid("action", f"the stored action is not valid: {exc.errors()[0]['msg']}") from None
        if decision.decision == "edit":
            if not decision.edits:
                raise Invalid("edits", "an edit needs the changed params in `edits`")
            action = action.model_copy(update={"params": {**action.params, **decision.edits}})
        result = actions.execute(session, action, actor, idempotency_key=f"inbox:{item_id}")
    elif decision.decision == "done" and row.reminder_id is not None:
        change = reminders.complete(session, row.reminder_id, actor)
    elif decision.decision == "snooze" and row.reminder_id is not None:
        if decision.until is not None and decision.until <= now:
            raise Invalid("until", "a snooze must end in the future")
        until = decision.until or now + (snooze_default or load_reminders().snooze)
        change = reminders.snooze(session, row.reminder_id, until, actor)
    item = inbox.close_item(session, row, decision.decision, actor, result)
    return Decided(item=item, result=result, change=change)
