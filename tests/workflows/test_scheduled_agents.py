"""The scheduled agents' selections on the small CRM (reference date 2017-06-09), and one run
triggered through its Temporal Schedule."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from config.files import load_schedules
from crm import repository
from crm.db import session_scope
from crm.models import InboxItem
from crm.schemas import ReminderCreate
from tests.tools.conftest import CRM
from tests.workflows.conftest import eventually
from tools.scheduled import run_agent
from workflows.client import Workflows
from workflows.deps import WorkerConfig
from workflows.schedules import agent_schedule_id

NOW = dt.datetime(2026, 11, 30, 13, 0, tzinfo=dt.UTC)


def _run(engine: Engine, agent: str) -> dict[str, int]:
    with session_scope(engine) as s:
        return run_agent(s, agent, dict(load_schedules().agents.items()), "UTC", NOW).counts


def _items(engine: Engine) -> list[InboxItem]:
    with session_scope(engine) as s:
        return list(s.scalars(select(InboxItem).order_by(InboxItem.id)))


def test_follow_up_proposes_reminders_and_alerts_stuck_deals_once(crm_data: CRM, clean_db: Engine) -> None:
    # D0000006 (Cy, Gammaco) has been engaging since 2017-03-15: 86 days, over 14 without a
    # follow-up and over the stage's 60-day limit (not over twice the limit: no manager alert)
    assert _run(clean_db, "follow_up") == {"action": 1, "alert": 1}
    items = _items(clean_db)
    action = next(i for i in items if i.kind == "action")
    assert action.recipient == "Cy Gamma" and action.deal_id == crm_data.deal["D0000006"]
    assert action.action is not None and action.action["kind"] == "create_reminder"
    assert action.action["params"]["due_at"].startswith("2026-12-01T09:00")
    assert "86 days" in action.body
    alert = next(i for i in items if i.kind == "alert")
    assert alert.recipient == "Cy Gamma" and "limit is 60" in alert.body
    assert _run(clean_db, "follow_up") == {}  # the same day again: nothing new


def test_a_deal_with_a_follow_up_scheduled_is_left_alone(crm_data: CRM, clean_db: Engine) -> None:
    with session_scope(clean_db) as s:
        repository.create_reminder(
            s, ReminderCreate(deal_id=crm_data.deal["D0000006"], due_at=NOW, message="call Gammaco")
        )
    assert _run(clean_db, "follow_up").get("action", 0) == 0


def test_digest_upsell_and_closure(crm_data: CRM, clean_db: Engine) -> None:
    with session_scope(clean_db) as s:
        repository.create_reminder(
            s, ReminderCreate(rep_id=crm_data.rep["Ann Alpha"], due_at=NOW, message="send the Acme quote")
        )
    assert _run(clean_db, "reminder_digest") == {"digest": 1}
    digest = _items(clean_db)[0]
    assert digest.recipient == "Ann Alpha" and "send the Acme quote" in digest.body
    # Acme (Ann) has won deals and no open deal: one upsell; Gammaco has an open deal
    assert _run(clean_db, "upsell") == {"action": 1}
    upsell = _items(clean_db)[-1]
    assert upsell.recipient == "Ann Alpha" and "Acme" in upsell.title
    assert _run(clean_db, "closure") == {}  # nothing is in negotiation


async def test_a_scheduled_run_files_into_the_inbox(
    crm_data: CRM, clean_db: Engine, worker: WorkerConfig, app_workflows: Workflows
) -> None:
    handle = app_workflows.client.get_schedule_handle(
        agent_schedule_id(worker.task_queue, "follow_up", "UTC")
    )
    await handle.trigger()
    items = await eventually(lambda: (i := _items(clean_db)) and len(i) >= 2 and i)
    assert {i.kind for i in items} == {"action", "alert"}


def test_with_a_model_the_follow_up_agent_files_drafted_emails_once(
    crm_data: CRM, clean_db: Engine, worker_config: WorkerConfig
) -> None:
    """With a model, a deal that needs a touch gets an email drafted by the closing crew (through
    the guards) instead of a proposed reminder; a second run that day drafts nothing again."""
    import dataclasses

    from llm import LLMConfig
    from tests.support.stub_llm import StubLLM
    from tests.workflows.test_sequences import DRAFT
    from workflows import agents

    with StubLLM(answers=[DRAFT]) as stub:
        llm = LLMConfig(base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=20, max_tokens=128)
        config = dataclasses.replace(worker_config, llm=llm)
        counts, notifications = agents.run(clean_db, config, "follow_up", "UTC", NOW)
        assert counts == {"draft": 1, "alert": 1}
        draft = next(i for i in _items(clean_db) if i.kind == "draft")
        assert draft.recipient == "Cy Gamma" and draft.deal_id == crm_data.deal["D0000006"]
        assert draft.action is not None and draft.action["kind"] == "queue_email"
        assert "86 days" in draft.body and "call this week" in draft.body
        assert {n.kind for n in notifications} == {"draft", "alert"}
        calls = stub.count
        assert agents.run(clean_db, config, "follow_up", "UTC", NOW) == ({}, [])
        assert stub.count == calls
