"""Scheduled and periodic workflows: a scheduled agent's run, and the dispatch of workflows the
CRM asked for whose start was missed."""

from __future__ import annotations

import datetime as dt

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.types import AgentRunInput, AgentRunResult, DispatchResult

_RETRY = RetryPolicy(
    initial_interval=dt.timedelta(seconds=2), maximum_interval=dt.timedelta(minutes=5), maximum_attempts=5
)


@workflow.defn(name="agent-run")
class AgentRunWorkflow:
    @workflow.run
    async def run(self, inp: AgentRunInput) -> AgentRunResult:
        result: AgentRunResult = await workflow.execute_activity(
            "run_agent",
            inp,
            result_type=AgentRunResult,
            start_to_close_timeout=dt.timedelta(minutes=30),
            retry_policy=_RETRY,
        )
        return result


@workflow.defn(name="dispatch")
class DispatchWorkflow:
    @workflow.run
    async def run(self) -> DispatchResult:
        result: DispatchResult = await workflow.execute_activity(
            "dispatch_pending",
            result_type=DispatchResult,
            start_to_close_timeout=dt.timedelta(minutes=5),
            retry_policy=_RETRY,
        )
        return result
