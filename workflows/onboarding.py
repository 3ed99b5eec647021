"""The onboarding of a won deal: the delivery crew's plan becomes tasks (reminders with owners and
due dates, each with its own reminder workflow), and when the last task is done or cancelled a
status report is filed in the rep's inbox."""

from __future__ import annotations

import contextlib
import datetime as dt

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.types import OnboardingInput, OnboardingTasks

_RETRY = RetryPolicy(initial_interval=dt.timedelta(seconds=1), maximum_interval=dt.timedelta(minutes=5))
_TIMEOUT = dt.timedelta(seconds=60)


@workflow.defn(name="onboarding")
class OnboardingWorkflow:
    def __init__(self) -> None:
        self._poke = False

    @workflow.run
    async def run(self, inp: OnboardingInput) -> int:
        """Returns the number of tasks it tracked."""
        tasks: OnboardingTasks = await workflow.execute_activity(
            "create_onboarding_tasks",
            inp.deal_id,
            result_type=OnboardingTasks,
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
        while True:
            open_count: int = await workflow.execute_activity(
                "count_open_reminders",
                tasks.reminder_ids,
                result_type=int,
                start_to_close_timeout=_TIMEOUT,
                retry_policy=_RETRY,
            )
            if open_count == 0:
                break
            self._poke = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._poke, timeout=inp.check_every_s)
        await workflow.execute_activity(
            "file_onboarding_report",
            args=[inp.deal_id, tasks.reminder_ids],
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
        return len(tasks.reminder_ids)

    @workflow.signal
    def task_closed(self) -> None:
        """One of its tasks was completed or cancelled: look now instead of at the next check."""
        self._poke = True
