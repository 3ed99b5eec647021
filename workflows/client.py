"""The app's side of the workflows: connect to the cluster, start what a write asked for, and
signal a reminder's workflow when a person changes the reminder. Every call here is best effort
with a short timeout: the database holds the truth, a missed start is made by the dispatch
schedule, and a missed signal only means the workflow learns the change when it next wakes."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from embedded.temporal import connect_config
from workflows.deps import WorkerConfig
from workflows.starts import start_requested

log = logging.getLogger(__name__)

#: Seconds a start or signal from the request path may take before it is left to the dispatch.
CALL_TIMEOUT_S = 5.0


async def connect(address: str, namespace: str) -> Client:
    """A client of the cluster at `address` with Flowstate's pydantic data converter. Raises what
    `Client.connect` raises (RuntimeError when nothing answers)."""
    return await Client.connect(**connect_config(address, namespace), data_converter=pydantic_data_converter)


class Workflows:
    """Starts and signals workflows for the app (one per process)."""

    def __init__(self, client: Client, engine: Engine, config: WorkerConfig) -> None:
        self.client = client
        self.engine = engine
        self.config = config

    async def start(self, workflow_ids: list[str]) -> None:
        """Start the requested workflows among `workflow_ids` now (best effort)."""
        if not workflow_ids:
            return
        try:
            await asyncio.wait_for(
                start_requested(self.client, self.engine, self.config, workflow_ids), CALL_TIMEOUT_S
            )
        except Exception as exc:  # the dispatch schedule starts them later
            log.warning("could not start %s now (the dispatch will): %r", workflow_ids, exc)

    async def reminder_changed(
        self, workflow_id: str, signal: str, *, status: str | None = None, due_at: dt.datetime | None = None
    ) -> None:
        """Tell a reminder's workflow it was closed (`signal` "close", with `status`) or moved
        (`signal` "reschedule", with `due_at`). A workflow that has ended is fine."""
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            if signal == "close":
                await asyncio.wait_for(handle.signal("close", status or "done"), CALL_TIMEOUT_S)
            elif signal == "reschedule" and due_at is not None:
                await asyncio.wait_for(handle.signal("reschedule", due_at), CALL_TIMEOUT_S)
        except RPCError as exc:  # not found / already completed: nothing to tell
            log.info("%s not signalled: %s", workflow_id, exc.message)
        except Exception as exc:
            log.warning("%s not signalled: %r", workflow_id, exc)

    async def cancel(self, workflow_id: str) -> None:
        """Send `cancel` to a workflow that takes it (a follow-up sequence); best effort."""
        try:
            await asyncio.wait_for(
                self.client.get_workflow_handle(workflow_id).signal("cancel"), CALL_TIMEOUT_S
            )
        except Exception as exc:  # ended already, or Temporal away: its next step sees the status
            log.warning("%s not cancelled: %r", workflow_id, exc)

    async def task_closed(self, workflow_id: str) -> None:
        """Wake a deal's onboarding to look at its tasks (a task was closed)."""
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            await asyncio.wait_for(handle.signal("task_closed"), CALL_TIMEOUT_S)
        except Exception as exc:  # the onboarding has ended
            log.debug("%s not signalled: %r", workflow_id, exc)
