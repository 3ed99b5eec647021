"""The workflow of one reminder: notify its owner at the due time, then climb the escalation
ladder (`config/reminders.yaml`) while nobody acknowledges it.

The database is the truth: each notification is an activity that re-reads the reminder and does
nothing for one that is done, cancelled or gone, or that was moved later (then the workflow
sleeps until the new time). Signals only wake the workflow early: `reschedule` (a new due time,
or a snooze) starts the ladder over from it; `close` (done, cancelled, deleted) ends it. After the
last rung it waits for `close`, so a task's workflow ends when the task is done.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.types import FireRequest, FireResult, ReminderInput

#: Each notification is one short transaction (and a Redis publish); retried with backoff while
#: the database is away, for up to a day.
FIRE_TIMEOUT = dt.timedelta(seconds=30)
FIRE_RETRY = RetryPolicy(
    initial_interval=dt.timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=dt.timedelta(minutes=5),
)
FIRE_SCHEDULE_TO_CLOSE = dt.timedelta(days=1)


@workflow.defn(name="reminder")
class ReminderWorkflow:
    def __init__(self) -> None:
        self._due: dt.datetime | None = None
        self._closed: str | None = None
        self._restart = False
        self._wake = False

    @workflow.run
    async def run(self, inp: ReminderInput) -> str:
        """Returns how it ended: the status the `close` signal carried, or "closed" when the fire
        activity found the reminder done, cancelled or deleted."""
        self._due = inp.due_at
        level = 0
        while self._closed is None:
            if self._restart:
                self._restart, level = False, 0
            if level > len(inp.ladder):  # every rung fired: wait for the reminder to be closed
                await workflow.wait_condition(lambda: self._closed is not None or self._restart)
                continue
            offset = 0.0 if level == 0 else inp.ladder[level - 1].after_s
            target = self._due + dt.timedelta(seconds=offset)
            if not await self._sleep_until(target):
                continue  # woken by a signal: closed, or a new due time
            notify = "owner" if level == 0 else inp.ladder[level - 1].notify
            result: FireResult = await workflow.execute_activity(
                "fire_reminder",
                FireRequest(reminder_id=inp.reminder_id, due_at=self._due, level=level, notify=notify),
                result_type=FireResult,
                start_to_close_timeout=FIRE_TIMEOUT,
                schedule_to_close_timeout=FIRE_SCHEDULE_TO_CLOSE,
                retry_policy=FIRE_RETRY,
            )
            if result.status == "closed":
                return "closed"
            if result.status == "not_due" and result.due_at is not None:
                self._due, level = result.due_at, 0
                continue
            if result.outbox_id is not None and result.email_workflow_id is not None:
                await start_email(result.outbox_id, result.email_workflow_id)
            level += 1
        return self._closed

    async def _sleep_until(self, target: dt.datetime) -> bool:
        """Sleep until `target` (a durable timer); False when a signal woke it first."""
        delay = (target - workflow.now()).total_seconds()
        if delay <= 0:
            return True
        self._wake = False
        try:
            await workflow.wait_condition(lambda: self._wake, timeout=delay)
        except TimeoutError:
            return True
        return False

    @workflow.signal
    def reschedule(self, due_at: dt.datetime) -> None:
        """The reminder is due at `due_at` now (rescheduled or snoozed): start the ladder over."""
        self._due = due_at
        self._restart = True
        self._wake = True

    @workflow.signal
    def close(self, status: str) -> None:
        """The reminder is done, cancelled or deleted: stop."""
        self._closed = status
        self._wake = True

    @workflow.query
    def due_at(self) -> dt.datetime | None:
        """When the next notification is based (the due time as the workflow knows it)."""
        return self._due


async def start_email(outbox_id: int, workflow_id: str) -> None:
    """Start the delivery workflow of an outbox message as an abandoned child (it outlives this
    workflow); a delivery already started under its id is left alone."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    with contextlib.suppress(WorkflowAlreadyStartedError):
        await workflow.start_child_workflow(
            "email",
            outbox_id,
            id=workflow_id,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )
