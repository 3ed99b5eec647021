"""The work of a won deal's onboarding activities: its plan (the delivery crew's `build_plan`,
dated from the close date, owners per milestone) becomes tasks, once; and the status report when
they are all closed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from contracts import ProposedAction
from contracts.notifications import Notification
from crews.delivery.flow import plan_of, plan_tasks
from crm import inbox, repository, workflow_runs
from crm.db import session_scope
from crm.models import Reminder
from crm.schemas import EventCreate
from tools import actions, reminders


def create_tasks(engine: Engine, deal_id: int, today: dt.date | None = None) -> tuple[list[int], list[str]]:
    """Create the onboarding tasks of won deal `deal_id` (reminders whose message starts with
    "Task: "), once per deal: a repeat returns the same ones. Dated from the close date; a task
    whose date has passed falls due today. Returns (reminder ids, their workflow ids)."""
    today = today or dt.date.today()
    with session_scope(engine) as session:
        deal = repository.get_deal(session, deal_id)
        plan = plan_of(session, deal, today)
        tasks = plan_tasks(plan, not_before=today)
        action = ProposedAction(
            kind="create_task",
            summary=f"Onboarding tasks for {plan.account or plan.deal}",
            params={"deal_id": deal.id, "account_id": deal.account_id, "rep_id": deal.rep_id, "tasks": tasks},
        )
        result = actions.execute(session, action, "flowstate", idempotency_key=f"onboarding-{deal_id}:tasks")
        return [int(i) for i in result.get("reminder_ids", [])], [str(w) for w in result.get("workflows", [])]


def file_report(
    engine: Engine, deal_id: int, reminder_ids: list[int], workflow_id: str
) -> Notification | None:
    """File the onboarding's status report (tasks done and cancelled) in the rep's inbox, write an
    Event "onboarding.completed" and record workflow `workflow_id` completed, once; the
    notification when it was filed now."""
    with session_scope(engine) as session:
        deal = repository.get_deal(session, deal_id)
        rows = (
            session.scalars(select(Reminder).where(Reminder.id.in_(reminder_ids))).all()
            if reminder_ids
            else []
        )
        done = sum(1 for r in rows if r.status == "done")
        cancelled = len(rows) - done
        who = deal.account_name or deal.external_id
        title = f"Onboarding complete: {who}"
        body = (
            f"All {len(reminder_ids)} onboarding tasks of deal {deal.external_id} are closed: "
            f"{done} done, {cancelled} cancelled or removed."
        )
        owner = reminders.rep_person(session, deal.rep_id)
        item, created = inbox.file_item(
            session,
            recipient=owner.name,
            rep_id=owner.rep_id,
            kind="report",
            title=title,
            body=body,
            deal_id=deal.id,
            account_id=deal.account_id,
            workflow_id=workflow_id,
            dedupe_key=f"onboarding-report:{deal_id}",
        )
        workflow_runs.set_status(session, workflow_id, "completed")
        if not created:
            return None
        repository.append_event(
            session,
            EventCreate(
                kind="onboarding.completed",
                actor="flowstate",
                account_id=deal.account_id,
                deal_id=deal.id,
                payload={"tasks": len(reminder_ids), "done": done, "item_id": item.id},
            ),
        )
        return inbox.notification_of(item)
