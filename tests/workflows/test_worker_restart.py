"""A worker killed with SIGKILL mid-ladder and started again finishes the reminder's escalation
with no notification or email twice: the timers and the history live on the Temporal server, and
every activity is idempotent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from sqlalchemy import Engine, select

from app.commands.serve import ENDPOINTS_ENV, endpoints_to_json
from crm import workflow_runs
from crm.db import session_scope
from crm.models import InboxItem, OutboxMessage, Reminder
from crm.schemas import InboxDecision
from embedded.smtp import EmbeddedSmtp, eml_name, sink_messages
from embedded.stack import Endpoints
from tests.support.stub_llm import StubLLM
from tests.tools.conftest import CRM
from tests.workflows.conftest import add_buyer, eventually
from tests.workflows.test_reminders import _items, _reminder
from tests.workflows.test_sequences import DRAFT
from tools import inbox as inbox_tools
from tools import sequences
from tools.actions import TASK_PREFIX
from workflows.client import Workflows
from workflows.deps import WorkerConfig


def _spawn(
    config: WorkerConfig, log: Path, stub: StubLLM | None = None, sequences: Path | None = None
) -> subprocess.Popen[bytes]:
    """`flowstate worker` as `flowstate serve` starts it (the endpoints in the environment)."""
    endpoints = Endpoints(
        database_url=config.database_url,
        redis_url=config.redis_url,
        openai_base_url=stub.base_url if stub else None,
        openai_api_key="x",
        llm_model=stub.model if stub else "m",
        embedded=frozenset(),
        temporal_address=config.temporal_address,
        temporal_namespace=config.temporal_namespace,
        smtp_url=config.smtp_url,
    )
    env = {
        **os.environ,
        ENDPOINTS_ENV: endpoints_to_json(endpoints),
        "FLOWSTATE_TASK_QUEUE": config.task_queue,
        "FLOWSTATE_REMINDERS_CONFIG": str(config.reminders_config),
        "FLOWSTATE_DISPATCH_EVERY_S": "1",
        "FLOWSTATE_MAIL_FROM": config.mail_from,
        **({"FLOWSTATE_SEQUENCES_CONFIG": str(sequences)} if sequences else {}),
    }
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-c", "from app.cli import main; main()", "worker"],
            env=env,
            stdout=fh,
            stderr=fh,
        )


def _mails(engine: Engine) -> list[OutboxMessage]:
    with session_scope(engine) as s:
        return list(s.scalars(select(OutboxMessage)))


async def test_a_worker_killed_mid_ladder_finishes_it_once(
    crm_data: CRM,
    clean_db: Engine,
    worker_config: WorkerConfig,
    app_workflows: Workflows,
    smtp_sink: EmbeddedSmtp,
    tmp_path: Path,
) -> None:
    log = tmp_path / "worker.log"
    proc = _spawn(worker_config, log)
    try:
        rid, _due = _reminder(clean_db, crm_data, due_in_s=12)  # the worker takes seconds to start
        with session_scope(clean_db) as s:
            wid = workflow_runs.workflow_id_of(s, "reminder", rid)
        assert wid is not None
        await app_workflows.start([wid])
        await eventually(lambda: _items(clean_db, rid), timeout_s=40)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        await asyncio.sleep(3)  # the owner's second notice falls due while no worker runs
        assert len(_items(clean_db, rid)) == 1
        proc = _spawn(worker_config, log)
        items = await eventually(lambda: (i := _items(clean_db, rid)) and len(i) == 3 and i, timeout_s=60)
        assert [i.recipient for i in items] == ["Ann Alpha", "Ann Alpha", "Mia Manager"]
        # an email activity the kill interrupted is retried after its 60 s start-to-close timeout
        mails = await eventually(
            lambda: (m := _mails(clean_db)) and all(x.status == "sent" for x in m) and m, timeout_s=120
        )
        assert len(mails) == 2
        names = [p.name for p in sink_messages(smtp_sink.folder)]
        for mail in mails:
            assert names.count(eml_name(mail.message_id)) == 1
        handle = app_workflows.client.get_workflow_handle(wid)
        await handle.signal("close", "done")
        assert await asyncio.wait_for(handle.result(), 20) == "done"
    finally:
        proc.kill()
        proc.wait(timeout=10)


SEQUENCE_YAML = """steps:
  - after: 0
    kind: email
    brief: a short follow-up
  - after: 8
    kind: task
    title: Call {account} about {product}
"""


async def test_a_worker_killed_mid_sequence_finishes_it_once(
    crm_data: CRM,
    clean_db: Engine,
    worker_config: WorkerConfig,
    app_workflows: Workflows,
    smtp_sink: EmbeddedSmtp,
    tmp_path: Path,
) -> None:
    """The draft is approved and its email sent; the worker dies with SIGKILL before the task is
    due; restarted, it creates the task once, and no email goes out twice."""
    steps = tmp_path / "sequences.yaml"
    steps.write_text(SEQUENCE_YAML)
    log = tmp_path / "worker.log"
    deal_id = crm_data.deal["D0000005"]
    add_buyer(clean_db, crm_data)
    with StubLLM(answers=[DRAFT]) as stub:
        proc = _spawn(worker_config, log, stub, steps)
        try:
            with session_scope(clean_db) as s:
                wid = sequences.request(s, deal_id).workflow_id
            # the steps are fixed when the sequence starts: the app's side reads the test's file
            starter = Workflows(
                app_workflows.client, clean_db, replace(worker_config, sequences_config=steps)
            )
            await starter.start([wid])
            drafts = await eventually(lambda: _kind(clean_db, "draft"), timeout_s=60)
            with session_scope(clean_db) as s:
                decided = inbox_tools.decide(s, drafts[0].id, InboxDecision(decision="approve"), actor="Bob")
            assert decided.result is not None
            await app_workflows.start(decided.result["workflows"])
            await eventually(lambda: (m := _mails(clean_db)) and m[0].status == "sent")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            await asyncio.sleep(2)
            proc = _spawn(worker_config, log, stub, steps)
            handle = app_workflows.client.get_workflow_handle(wid)
            assert await asyncio.wait_for(handle.result(), 60) == "completed"
        finally:
            proc.kill()
            proc.wait(timeout=10)
    with session_scope(clean_db) as s:
        tasks = s.scalars(select(Reminder).where(Reminder.message.startswith(TASK_PREFIX))).all()
    assert [t.message for t in tasks] == [f"{TASK_PREFIX}Call Betaco about GTX Basic"]
    assert len(_kind(clean_db, "draft")) == 1
    mails = _mails(clean_db)
    assert len(mails) == 1
    assert [p.name for p in sink_messages(smtp_sink.folder)].count(eml_name(mails[0].message_id)) == 1


def _kind(engine: Engine, kind: str) -> list[InboxItem]:
    with session_scope(engine) as s:
        return list(s.scalars(select(InboxItem).where(InboxItem.kind == kind)))
