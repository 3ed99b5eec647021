"""The outbox, won-deal onboarding and the schedules on a real Temporal server.

- An approved email reaches the SMTP sink once, however often its delivery is started or its
  activity repeated; one that cannot be delivered is reported to its rep, not dropped.
- Winning a deal creates its onboarding tasks (reminders with owners and due dates, each with a
  workflow), and the status report is filed once the last task is closed.
- The worker puts the five scheduled agents on the cluster at the configured local times.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import Engine, select
from temporalio.client import ScheduleActionStartWorkflow

from config.files import load_schedules
from contracts import ProposedAction
from crm.db import session_scope
from crm.models import InboxItem, OutboxMessage, Reminder, WorkflowRun
from embedded.smtp import EmbeddedSmtp, eml_name, sink_messages
from tests.tools.conftest import CRM
from tests.workflows.conftest import eventually
from tools import reminders
from tools.actions import TASK_PREFIX, execute
from workflows.activities import Activities
from workflows.client import Workflows
from workflows.deps import WorkerConfig
from workflows.schedules import agent_schedule_id, dispatch_schedule_id
from workflows.starts import requested_by


def _email(crm: CRM, to: str | None) -> ProposedAction:
    params = {"subject": "Your quote", "body": "Here it is.", "deal_id": crm.deal["D0000005"]}
    if to:
        params["to"] = to
    return ProposedAction(kind="queue_email", summary="email", params=params)


def _outbox(engine: Engine) -> list[OutboxMessage]:
    with session_scope(engine) as s:
        return list(s.scalars(select(OutboxMessage)).all())


async def test_an_approved_email_reaches_the_sink_once(
    crm_data: CRM, clean_db: Engine, worker: WorkerConfig, app_workflows: Workflows, smtp_sink: EmbeddedSmtp
) -> None:
    with session_scope(clean_db) as s:
        result = execute(
            s, _email(crm_data, "buyer@betaco.example"), "Bob Beta", idempotency_key="approval:t1:a"
        )
    ids = requested_by(result)
    assert len(ids) == 1 and ids[0].startswith(f"email-{result['outbox_id']}-")
    await app_workflows.start(ids)
    await app_workflows.start(ids)  # a second start (the app and the dispatch racing) is refused
    sent = await eventually(lambda: (m := _outbox(clean_db)) and m[0].status == "sent" and m[0])
    assert sent.attempts == 1 and sent.sent_at is not None
    # the activity run again (a retry whose result Temporal lost) sends nothing more
    again = Activities(worker)
    try:
        assert (await asyncio.to_thread(_deliver_again, again, sent.id)).detail == "already sent"
    finally:
        again.close()
    files = [p for p in sink_messages(smtp_sink.folder) if p.name == eml_name(sent.message_id)]
    assert len(files) == 1
    text = files[0].read_text()
    assert "To: buyer@betaco.example" in text and "Subject: Your quote" in text and sent.message_id in text
    with session_scope(clean_db) as s:
        run = s.scalars(select(WorkflowRun).where(WorkflowRun.outbox_id == sent.id)).one()
        assert run.status == "completed"


def _deliver_again(activities: Activities, outbox_id: int):  # type: ignore[no-untyped-def]
    from temporalio.testing import ActivityEnvironment

    return ActivityEnvironment().run(activities.deliver_email, outbox_id)


async def test_an_undeliverable_email_is_reported_to_its_rep(
    crm_data: CRM, clean_db: Engine, worker: WorkerConfig, app_workflows: Workflows
) -> None:
    with session_scope(clean_db) as s:
        result = execute(s, _email(crm_data, None), "Bob Beta", idempotency_key="approval:t2:a")
    await app_workflows.start(requested_by(result))
    failed = await eventually(lambda: (m := _outbox(clean_db)) and m[0].status == "failed" and m[0])
    assert "no recipient address" in (failed.last_error or "")
    with session_scope(clean_db) as s:
        alert = s.scalars(select(InboxItem).where(InboxItem.kind == "alert")).one()
    assert alert.recipient == "Bob Beta" and "not delivered" in alert.title


def _tasks(engine: Engine, deal_id: int) -> list[Reminder]:
    with session_scope(engine) as s:
        return list(
            s.scalars(
                select(Reminder).where(Reminder.deal_id == deal_id, Reminder.message.startswith(TASK_PREFIX))
            )
        )


async def test_a_won_deal_gets_its_onboarding_tasks_and_report(
    crm_data: CRM, clean_db: Engine, worker: WorkerConfig, app_workflows: Workflows
) -> None:
    deal_id = crm_data.deal["D0000005"]
    today = dt.date.today()
    move = ProposedAction(
        kind="move_stage",
        summary="won",
        params={"deal_id": deal_id, "stage": "won", "value": 600, "close_date": today.isoformat()},
    )
    with session_scope(clean_db) as s:
        result = execute(s, move, "Bob Beta", idempotency_key="approval:t3:a")
    assert result["won"] is True and len(requested_by(result)) == 1
    await app_workflows.start(requested_by(result))
    tasks = await eventually(lambda: (t := _tasks(clean_db, deal_id)) and len(t) == 9 and t)
    assert all(t.rep_id == crm_data.rep["Bob Beta"] for t in tasks)
    assert min(t.due_at for t in tasks).date() >= today
    assert any("(owner: Delivery team)" in t.message for t in tasks)

    def task_runs() -> list[str]:
        """the statuses of the tasks' workflows (started right after the tasks are written)"""
        with session_scope(clean_db) as s:
            runs = s.scalars(
                select(WorkflowRun).where(WorkflowRun.kind == "reminder", WorkflowRun.deal_id == deal_id)
            )
            return sorted(r.status for r in runs)

    await eventually(lambda: task_runs() == ["started"] * 9)
    for task in tasks:
        with session_scope(clean_db) as s:
            change = reminders.complete(s, task.id, "Bob Beta")
        assert change.onboarding_workflow_id is not None and change.workflow_id is not None
        await app_workflows.reminder_changed(change.workflow_id, "close", status="done")
        await app_workflows.task_closed(change.onboarding_workflow_id)
    report = await eventually(lambda: _items_of_kind(clean_db, "report"), timeout_s=15)
    assert report[0].recipient == "Bob Beta" and "9 onboarding tasks" in report[0].body
    assert "9 done" in report[0].body


def _items_of_kind(engine: Engine, kind: str) -> list[InboxItem]:
    with session_scope(engine) as s:
        return list(s.scalars(select(InboxItem).where(InboxItem.kind == kind)))


async def test_the_scheduled_agents_are_on_the_cluster_at_their_times(
    crm_data: CRM, worker: WorkerConfig, app_workflows: Workflows
) -> None:
    config = load_schedules(worker.schedules_config)
    assert set(config.agents) == {"reminder_digest", "follow_up", "closure", "nurture", "upsell"}
    expected = {
        "reminder_digest": (9, 0),
        "follow_up": (13, 0),
        "closure": (16, 0),
        "nurture": (11, 0),
        "upsell": (10, 0),
    }
    for agent, (hour, minute) in expected.items():
        desc = await app_workflows.client.get_schedule_handle(
            agent_schedule_id(worker.task_queue, agent, "UTC")
        ).describe()
        calendar = desc.schedule.spec.calendars[0]
        assert (calendar.hour[0].start, calendar.minute[0].start) == (hour, minute), agent
        assert desc.schedule.spec.time_zone_name == "UTC"
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == "agent-run"
    upsell = await app_workflows.client.get_schedule_handle(
        agent_schedule_id(worker.task_queue, "upsell", "UTC")
    ).describe()
    assert [r.start for r in upsell.schedule.spec.calendars[0].day_of_week] == [1]  # Monday
    nurture = await app_workflows.client.get_schedule_handle(
        agent_schedule_id(worker.task_queue, "nurture", "UTC")
    ).describe()
    assert nurture.schedule.spec.calendars[0].day_of_month[0].step == 2
    dispatch = await app_workflows.client.get_schedule_handle(
        dispatch_schedule_id(worker.task_queue)
    ).describe()
    assert dispatch.schedule.spec.intervals[0].every == dt.timedelta(seconds=1)
