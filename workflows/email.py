"""The delivery of one outbox message: an SMTP activity retried with backoff, exactly once in
effect (the activity skips a message already sent, and every attempt carries the same
Message-ID); a message that cannot be delivered is reported to its rep, not dropped."""

from __future__ import annotations

import datetime as dt

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.types import EmailResult

#: SMTP attempts: 2 s, 4 s, 8 s ... at most 5 min apart, 8 attempts in all (about 12 minutes)
#: before the message is reported as failed.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=dt.timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=dt.timedelta(minutes=5),
    maximum_attempts=8,
    non_retryable_error_types=["Undeliverable"],
)


@workflow.defn(name="email")
class EmailWorkflow:
    @workflow.run
    async def run(self, outbox_id: int) -> EmailResult:
        try:
            result: EmailResult = await workflow.execute_activity(
                "deliver_email",
                outbox_id,
                result_type=EmailResult,
                start_to_close_timeout=dt.timedelta(seconds=60),
                retry_policy=DELIVERY_RETRY,
            )
            return result
        except ActivityError as exc:
            cause = exc.cause or exc
            detail = str(getattr(cause, "message", "") or cause)
            await workflow.execute_activity(
                "report_undelivered",
                args=[outbox_id, detail],
                start_to_close_timeout=dt.timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=dt.timedelta(minutes=5)),
            )
            return EmailResult(status="failed", detail=detail)
