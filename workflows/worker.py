"""The Temporal worker: polls the task queue and runs Flowstate's workflows and activities.

`run_worker(config)` runs until cancelled; at start it puts the schedules in place (the scheduled
agents per rep time zone and the dispatch). Any number of workers may poll one queue of one
cluster (`flowstate worker`, the scale-out path); Temporal hands each task to one of them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from workflows.activities import Activities
from workflows.client import connect
from workflows.deps import WorkerConfig
from workflows.email import EmailWorkflow
from workflows.onboarding import OnboardingWorkflow
from workflows.reminders import ReminderWorkflow
from workflows.runs import AgentRunWorkflow, DispatchWorkflow
from workflows.schedules import put_schedules
from workflows.sequence import SequenceWorkflow

log = logging.getLogger(__name__)

WORKFLOWS: Sequence[type[Any]] = (
    ReminderWorkflow,
    EmailWorkflow,
    OnboardingWorkflow,
    SequenceWorkflow,
    AgentRunWorkflow,
    DispatchWorkflow,
)
#: Threads for the sync (database, SMTP) activities of one worker.
ACTIVITY_THREADS = 16


def build_worker(client: Client, activities: Activities, executor: concurrent.futures.Executor) -> Worker:
    """A Worker on `activities.config.task_queue` with every workflow and activity."""
    return Worker(
        client,
        task_queue=activities.config.task_queue,
        workflows=list(WORKFLOWS),
        activities=activities.all(),
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
    )


async def run_worker(
    config: WorkerConfig, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None
) -> None:
    """Connect, put the schedules in place, and run the worker until `stop` is set or the task is
    cancelled (`ready` is set once it polls); then shut it down, letting running activities
    finish. Raises what the client raises when the cluster does not answer."""
    client = await connect(config.temporal_address, config.temporal_namespace)
    activities = Activities(config)
    with concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS, thread_name_prefix="activity") as executor:
        try:
            await put_schedules(client, activities.engine, activities.config)
            worker = build_worker(client, activities, executor)
            async with worker:
                log.info("worker polling %s on %s", config.task_queue, config.temporal_address)
                if ready is not None:
                    ready.set()
                await (stop or asyncio.Event()).wait()
        finally:
            activities.close()
