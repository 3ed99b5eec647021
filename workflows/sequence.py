"""A follow-up sequence for a deal: its steps (`config/sequences.yaml`) at their times after the
start. Each step is one activity that first checks the deal: a deal that changed stage or closed
ends the sequence before anything is drafted. `cancel` (the rep) ends it at once."""

from __future__ import annotations

import contextlib
import datetime as dt

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.types import SequenceInput, SequenceStepRequest, SequenceStepResult

#: A step drafts with the model (seconds to a minute on a small CPU); retried a few times.
STEP_TIMEOUT = dt.timedelta(minutes=10)
STEP_RETRY = RetryPolicy(
    initial_interval=dt.timedelta(seconds=5), maximum_interval=dt.timedelta(minutes=5), maximum_attempts=5
)


@workflow.defn(name="sequence")
class SequenceWorkflow:
    def __init__(self) -> None:
        self._cancelled = False

    @workflow.run
    async def run(self, inp: SequenceInput) -> str:
        """Returns "completed", "stopped" (the deal moved on) or "cancelled"."""
        start = workflow.now()
        status = "completed"
        for index, step in enumerate(inp.steps):
            delay = (start + dt.timedelta(seconds=step.after_s) - workflow.now()).total_seconds()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self._cancelled, timeout=delay)
            if self._cancelled:
                status = "cancelled"
                break
            result: SequenceStepResult = await workflow.execute_activity(
                "sequence_step",
                SequenceStepRequest(deal_id=inp.deal_id, stage=inp.stage, index=index, step=step),
                result_type=SequenceStepResult,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
            )
            if result.status == "stopped":
                status = "stopped"
                break
        await workflow.execute_activity(
            "set_run_status",
            "cancelled" if status == "cancelled" else "completed",
            start_to_close_timeout=dt.timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=dt.timedelta(minutes=1)),
        )
        return status

    @workflow.signal
    def cancel(self) -> None:
        """The rep stopped the sequence."""
        self._cancelled = True
