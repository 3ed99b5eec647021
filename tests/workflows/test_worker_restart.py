"""A worker killed with SIGKILL mid-ladder and started again finishes the reminder's escalation
with no notification or email twice: the timers and the history live on the Temporal server, and
every activity is idempotent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, select

from app.commands.serve import ENDPOINTS_ENV, endpoints_to_json
from crm import workflow_runs
from crm.db import session_scope
from crm.models import OutboxMessage
from embedded.smtp import EmbeddedSmtp, eml_name, sink_messages
from embedded.stack import Endpoints
from tests.tools.conftest import CRM
from tests.workflows.conftest import eventually
from tests.workflows.test_reminders import _items, _reminder
from workflows.client import Workflows
from workflows.deps import WorkerConfig


def _spawn(config: WorkerConfig, log: Path) -> subprocess.Popen[bytes]:
    endpoints = Endpoints(
        database_url=config.database_url,
        redis_url=config.redis_url,
        openai_base_url=None,
        openai_api_key="x",
        llm_model="m",
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
            wid = workflow_runs.workflow_id_of(s, "reminder", reminder_id=rid)
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
        mails = await eventually(lambda: (m := _mails(clean_db)) and all(x.status == "sent" for x in m) and m)
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
