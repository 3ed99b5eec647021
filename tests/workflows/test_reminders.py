"""Reminders on a real Temporal server: one fires at its due time and climbs the ladder while
nobody acknowledges it; completing it stops the ladder; a start the app missed is made by the
dispatch schedule. Each notification is an inbox item, an Event, a live notification and, for a
person with an address, one email in the SMTP sink."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import Engine, select, update

from app.services.notifications import NotificationHub
from crm import repository, workflow_runs
from crm.db import session_scope
from crm.models import Event, InboxItem, OutboxMessage, Reminder, SalesRep, WorkflowRun
from crm.schemas import InboxDecision, ReminderCreate
from embedded.smtp import EmbeddedSmtp, eml_name, sink_messages
from tests.tools.conftest import CRM
from tests.workflows.conftest import eventually
from tools import inbox as inbox_tools
from workflows.client import Workflows
from workflows.deps import WorkerConfig

ANN_EMAIL = "ann.alpha@example.com"


def _workflow_id(engine: Engine, reminder_id: int) -> str:
    with session_scope(engine) as s:
        wid = workflow_runs.workflow_id_of(s, "reminder", reminder_id)
    assert wid is not None
    return wid


def _reminder(engine: Engine, crm: CRM, due_in_s: float) -> tuple[int, dt.datetime]:
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=due_in_s)
    with session_scope(engine) as s:
        s.execute(update(SalesRep).where(SalesRep.id == crm.rep["Ann Alpha"]).values(email=ANN_EMAIL))
        r = repository.create_reminder(
            s,
            ReminderCreate(
                rep_id=crm.rep["Ann Alpha"], deal_id=crm.deal["D0000001"], due_at=due, message="Call Acme"
            ),
        )
    return r.id, due


def _items(engine: Engine, reminder_id: int) -> list[InboxItem]:
    with session_scope(engine) as s:
        return list(
            s.scalars(
                select(InboxItem).where(InboxItem.reminder_id == reminder_id).order_by(InboxItem.id)
            ).all()
        )


async def test_a_reminder_fires_once_at_its_time_and_escalates(
    crm_data: CRM,
    clean_db: Engine,
    worker: WorkerConfig,
    app_workflows: Workflows,
    smtp_sink: EmbeddedSmtp,
    redis_url: str,
) -> None:
    hub = NotificationHub(redis_url)
    hub.start()
    await asyncio.wait_for(hub.subscribed.wait(), 10)
    ann = hub.register("Ann Alpha")
    rid, due = _reminder(clean_db, crm_data, due_in_s=2)
    await app_workflows.start([_workflow_id(clean_db, rid)])

    first = await asyncio.wait_for(ann.get(), 15)
    assert first.reminder_id == rid and first.kind == "reminder" and "Call Acme" in first.title
    items = await eventually(lambda: (i := _items(clean_db, rid)) and len(i) == 3 and i)
    await hub.stop()
    # the owner at the due time, the owner again 2 s later, then the manager 4 s after the due time
    assert [(i.recipient, i.status) for i in items] == [
        ("Ann Alpha", "open"),
        ("Ann Alpha", "open"),
        ("Mia Manager", "open"),
    ]
    assert items[0].created_at >= due - dt.timedelta(seconds=0.5)
    assert items[1].created_at - due >= dt.timedelta(seconds=1.5)
    assert items[2].created_at - due >= dt.timedelta(seconds=3.5)
    await asyncio.sleep(2.5)  # nothing more comes: the ladder has two rungs
    assert len(_items(clean_db, rid)) == 3
    with session_scope(clean_db) as s:
        reminder = s.get(Reminder, rid)
        assert reminder is not None and reminder.status == "escalated" and reminder.escalation_level == 2
        assert reminder.fired_at is not None
        kinds = s.scalars(select(Event.kind).where(Event.kind.like("reminder.%"))).all()
        assert sorted(kinds) == ["reminder.escalated", "reminder.escalated", "reminder.fired"]
        mails = s.scalars(select(OutboxMessage).where(OutboxMessage.to_addr == ANN_EMAIL)).all()
    # the manager has no address: two emails, to Ann, each delivered once
    assert len(mails) == 2
    sent = await eventually(lambda: all(m.status == "sent" for m in _mails(clean_db)) and _mails(clean_db))
    files = {p.name for p in sink_messages(smtp_sink.folder)}
    assert all(eml_name(m.message_id) in files for m in sent)


def _mails(engine: Engine) -> list[OutboxMessage]:
    with session_scope(engine) as s:
        return list(s.scalars(select(OutboxMessage)).all())


async def test_completing_a_reminder_stops_its_ladder(
    crm_data: CRM, clean_db: Engine, worker: WorkerConfig, app_workflows: Workflows
) -> None:
    rid, _due = _reminder(clean_db, crm_data, due_in_s=1)
    await app_workflows.start([_workflow_id(clean_db, rid)])
    items = await eventually(lambda: _items(clean_db, rid))
    with session_scope(clean_db) as s:
        decided = inbox_tools.decide(s, items[0].id, InboxDecision(decision="done"), actor="Ann Alpha")
    assert decided.change is not None and decided.change.signal == "close"
    assert decided.change.workflow_id == _workflow_id(clean_db, rid)
    await app_workflows.reminder_changed(decided.change.workflow_id, "close", status="done")
    handle = app_workflows.client.get_workflow_handle(decided.change.workflow_id)
    assert await asyncio.wait_for(handle.result(), 10) == "done"
    await asyncio.sleep(4.5)  # past both rungs: nothing more was filed
    assert [i.status for i in _items(clean_db, rid)] == ["done"]
    with session_scope(clean_db) as s:
        reminder = s.get(Reminder, rid)
        assert reminder is not None and reminder.status == "done"


async def test_snoozing_a_reminder_fires_it_again_at_the_new_time(
    crm_data: CRM, clean_db: Engine, worker: WorkerConfig, app_workflows: Workflows
) -> None:
    rid, _due = _reminder(clean_db, crm_data, due_in_s=1)
    await app_workflows.start([_workflow_id(clean_db, rid)])
    items = await eventually(lambda: _items(clean_db, rid))
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    with session_scope(clean_db) as s:
        decided = inbox_tools.decide(
            s, items[0].id, InboxDecision(decision="snooze", until=until), actor="Ann"
        )
    assert decided.change is not None and decided.change.workflow_id is not None
    await app_workflows.reminder_changed(decided.change.workflow_id, "reschedule", due_at=until)
    again = await eventually(lambda: (i := _items(clean_db, rid)) and len(i) >= 2 and i)
    assert again[0].status == "snoozed" and again[1].recipient == "Ann Alpha"
    assert again[1].created_at >= until - dt.timedelta(seconds=0.5)


async def test_a_missed_start_is_made_by_the_dispatch_schedule(
    crm_data: CRM, clean_db: Engine, worker: WorkerConfig
) -> None:
    """The reminder is stored but nobody starts its workflow (the app could not reach Temporal):
    the dispatch schedule (every second here) starts it, and it fires."""
    rid, _due = _reminder(clean_db, crm_data, due_in_s=1)
    await eventually(lambda: _items(clean_db, rid))
    with session_scope(clean_db) as s:
        run = s.scalars(select(WorkflowRun).where(WorkflowRun.reminder_id == rid)).one()
        assert run.status == "started" and run.started_at is not None
