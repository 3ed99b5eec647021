"""Follow-up sequences on a real Temporal server, with the closing crew drafting against a stub
model: each email step is drafted, passes the guards and waits in the rep's inbox; an approved
draft is sent once; the sequence stops by itself when the deal changes stage, and at once when
the rep cancels it. Steps are seconds apart here (a sequences file of the test's own)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from crm import repository
from crm.db import session_scope
from crm.models import InboxItem, OutboxMessage, Reminder, WorkflowRun
from crm.schemas import InboxDecision
from embedded.smtp import EmbeddedSmtp, eml_name, sink_messages
from llm import LLMConfig
from tests.support.stub_llm import StubLLM
from tests.tools.conftest import CRM
from tests.workflows.conftest import add_buyer, eventually
from tools import inbox as inbox_tools
from tools import sequences
from tools.actions import TASK_PREFIX
from workflows.client import Workflows
from workflows.deps import WorkerConfig

#: The closer's words for every draft (the crew adds the figures, signature and footer).
DRAFT = (
    "Subject: Next steps on your GTX Basic evaluation\n\n"
    "Thank you for your time last week. Would a short call this week help you decide?"
)

STEPS_YAML = """steps:
  - after: 0
    kind: email
    brief: a short follow-up
  - after: 25
    kind: email
    brief: a second follow-up
  - after: 27
    kind: task
    title: Call {account} about {product} (deal {deal})
"""


@pytest.fixture
def stub() -> Iterator[StubLLM]:
    with StubLLM(answers=[DRAFT]) as llm:
        yield llm


@pytest.fixture
def worker_config(worker_config: WorkerConfig, stub: StubLLM, tmp_path: Path) -> WorkerConfig:
    """The shared config with the test's sequence and the stub model (the worker and the app's
    client of this module use it)."""
    steps = tmp_path / "sequences.yaml"
    steps.write_text(STEPS_YAML)
    llm = LLMConfig(base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=20, max_tokens=128)
    return dataclasses.replace(worker_config, sequences_config=steps, llm=llm)


def _items(engine: Engine, kind: str | None = None) -> list[InboxItem]:
    with session_scope(engine) as s:
        stmt = select(InboxItem).order_by(InboxItem.id)
        if kind:
            stmt = stmt.where(InboxItem.kind == kind)
        return list(s.scalars(stmt))


async def _start(engine: Engine, app: Workflows, deal_id: int) -> str:
    with session_scope(engine) as s:
        run = sequences.request(s, deal_id)
    await app.start([run.workflow_id])
    return run.workflow_id


async def test_a_sequence_drafts_for_approval_and_stops_when_the_deal_moves(
    crm_data: CRM,
    clean_db: Engine,
    worker: WorkerConfig,
    app_workflows: Workflows,
    smtp_sink: EmbeddedSmtp,
    stub: StubLLM,
) -> None:
    app = app_workflows
    deal_id = crm_data.deal["D0000005"]
    add_buyer(clean_db, crm_data)  # Bob, Betaco, engaging
    wid = await _start(clean_db, app, deal_id)
    drafts = await eventually(lambda: _items(clean_db, "draft"), timeout_s=40)
    draft = drafts[0]
    assert draft.recipient == "Bob Beta" and draft.deal_id == deal_id and draft.workflow_id == wid
    assert draft.action is not None and draft.action["kind"] == "queue_email"
    assert "call this week" in draft.body and stub.count >= 1
    with session_scope(clean_db) as s:
        decided = inbox_tools.decide(s, draft.id, InboxDecision(decision="approve"), actor="Bob Beta")
    assert decided.result is not None
    await app.start(decided.result["workflows"])
    with session_scope(clean_db) as s:  # the deal moves on before the second email is due
        repository.move_deal_stage(s, deal_id, "qualified", "Bob Beta", None)
    handle = app.client.get_workflow_handle(wid)
    assert await asyncio.wait_for(handle.result(), 45) == "stopped"
    assert len(_items(clean_db, "draft")) == 1  # nothing drafted after the move
    with session_scope(clean_db) as s:
        assert not s.scalars(select(Reminder).where(Reminder.message.startswith(TASK_PREFIX))).all()
        assert (
            s.scalars(select(WorkflowRun.status).where(WorkflowRun.workflow_id == wid)).one() == "completed"
        )
    sent = await eventually(lambda: (m := _mails(clean_db)) and m[0].status == "sent" and m[0])
    names = [p.name for p in sink_messages(smtp_sink.folder)]
    assert names.count(eml_name(sent.message_id)) == 1


def _mails(engine: Engine) -> list[OutboxMessage]:
    with session_scope(engine) as s:
        return list(s.scalars(select(OutboxMessage)))


async def test_a_cancelled_sequence_ends_at_once(
    crm_data: CRM, clean_db: Engine, worker: WorkerConfig, app_workflows: Workflows
) -> None:
    app = app_workflows
    deal_id = crm_data.deal["D0000006"]
    wid = await _start(clean_db, app, deal_id)
    await eventually(lambda: _items(clean_db, "draft"), timeout_s=40)
    with session_scope(clean_db) as s, pytest.raises(Exception, match="already runs"):
        sequences.request(s, deal_id)
    with session_scope(clean_db) as s:
        sequences.cancel(s, deal_id)
    await app.cancel(wid)
    assert await asyncio.wait_for(app.client.get_workflow_handle(wid).result(), 15) == "cancelled"
    with session_scope(clean_db) as s:
        assert (
            s.scalars(select(WorkflowRun.status).where(WorkflowRun.workflow_id == wid)).one() == "cancelled"
        )
    assert len(_items(clean_db, "draft")) == 1
