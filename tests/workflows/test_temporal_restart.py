"""Temporal's own state survives a crash: the dev server killed with SIGKILL mid-ladder and started
again on its SQLite file resumes the reminder's timers, and the worker (which kept running)
finishes the escalation with nothing notified twice."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from pathlib import Path

from sqlalchemy import Engine

from embedded.temporal import start_temporal
from tests.tools.conftest import CRM
from tests.workflows.conftest import eventually, free_port
from tests.workflows.test_reminders import _items, _reminder, _workflow_id
from workflows.client import Workflows, connect
from workflows.deps import WorkerConfig
from workflows.worker import run_worker


async def test_a_temporal_server_killed_mid_ladder_resumes_it(
    crm_data: CRM, clean_db: Engine, worker_config: WorkerConfig, tmp_path: Path
) -> None:
    port, ui = free_port(), free_port()
    server = start_temporal(tmp_path, port, ui)
    config = dataclasses.replace(worker_config, temporal_address=server.address)
    ready = asyncio.Event()
    worker = asyncio.create_task(run_worker(config, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        app = Workflows(await connect(server.address, "default"), clean_db, config)
        rid, _due = _reminder(clean_db, crm_data, due_in_s=1)
        await app.start([_workflow_id(clean_db, rid)])
        await eventually(lambda: _items(clean_db, rid))
        assert server._proc is not None
        server._proc.send_signal(signal.SIGKILL)
        server._proc.wait(timeout=10)
        await asyncio.sleep(3)  # the owner's second notice falls due while the server is down
        server = start_temporal(tmp_path, port, ui)
        items = await eventually(lambda: (i := _items(clean_db, rid)) and len(i) == 3 and i, timeout_s=90)
        assert [i.recipient for i in items] == ["Ann Alpha", "Ann Alpha", "Mia Manager"]
        await asyncio.sleep(2)
        assert len(_items(clean_db, rid)) == 3
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await worker
        server.stop()
