"""The activities: every side effect of the workflows (database, SMTP, Redis, starting other
workflows). Each is idempotent, since Temporal retries an activity whose result it did not
receive: database writes are keyed (inbox `dedupe_key`, outbox `idempotency_key`, executed
action keys), and a message already sent is not sent again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis
from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.notifications import NOTIFICATIONS_CHANNEL, Notification
from crm import inbox, outbox, repository, workflow_runs
from crm.db import make_engine, session_scope
from crm.errors import NotFound
from crm.schemas import EventCreate
from tools import reminders
from workflows import agents, onboarding_plan, schedules, sequence_steps
from workflows.deps import WorkerConfig
from workflows.mail import Undeliverable, build_message, send
from workflows.starts import start_requested
from workflows.types import (
    AgentRunInput,
    AgentRunResult,
    DispatchResult,
    EmailResult,
    FireRequest,
    FireResult,
    OnboardingTasks,
    SequenceStepRequest,
    SequenceStepResult,
)

log = logging.getLogger(__name__)


class Activities:
    """The activities of one worker, bound to its database, Redis and SMTP server."""

    def __init__(self, config: WorkerConfig, engine: Engine | None = None) -> None:
        self.config = config
        self.engine = engine or make_engine(config.database_url)
        self._redis = redis.Redis.from_url(config.redis_url) if config.redis_url else None
        #: the rep time zones whose agent schedules this worker has put in place
        self._zones: list[str] | None = None

    def close(self) -> None:
        """Release the engine's connections and the Redis client."""
        self.engine.dispose()
        if self._redis is not None:
            self._redis.close()

    def all(self) -> list[Any]:
        """The activity callables to register with a Worker."""
        return [
            self.fire_reminder,
            self.deliver_email,
            self.report_undelivered,
            self.create_onboarding_tasks,
            self.count_open_reminders,
            self.file_onboarding_report,
            self.run_agent,
            self.dispatch_pending,
            self.sequence_step,
            self.set_run_status,
        ]

    def publish(self, notification: Notification | None) -> None:
        """Send a notification to the app processes (best effort: the inbox item is the record)."""
        if notification is None or self._redis is None:
            return
        try:
            self._redis.publish(NOTIFICATIONS_CHANNEL, notification.model_dump_json())
        except redis.RedisError as exc:
            log.warning("notification not published: %r", exc)

    # --- reminders --------------------------------------------------------------------------

    @activity.defn(name="fire_reminder")
    def fire_reminder(self, req: FireRequest) -> FireResult:
        """Notify about a reminder that fell due or is still open (`tools.reminders.fire`)."""
        with session_scope(self.engine) as session:
            fired = reminders.fire(session, req.reminder_id, req.due_at, req.level, req.notify)
        self.publish(fired.notification)
        return fired.model_copy(update={"notification": None})  # published; not for the history

    # --- the outbox ---------------------------------------------------------------------------

    @activity.defn(name="deliver_email")
    def deliver_email(self, outbox_id: int) -> EmailResult:
        """Send one outbox message over SMTP, once: a message already sent is skipped; the row is
        locked while sending, so two attempts never overlap. A failed attempt is counted with its
        error and raised for Temporal to retry; Undeliverable is not retried."""
        if not self.config.smtp_url:
            raise ApplicationError("no SMTP server is configured (SMTP_URL)", non_retryable=True)
        try:
            with session_scope(self.engine) as session:
                row = outbox.lock(session, outbox_id)
                if row.status == "sent":
                    return EmailResult(status="sent", detail="already sent")
                workflow_runs.set_status(session, _workflow_id(), "started")
                if not row.to_addr:
                    raise Undeliverable("the message has no recipient address")
                msg = build_message(
                    message_id=row.message_id,
                    sender=self.config.mail_from,
                    to=row.to_addr,
                    subject=row.subject,
                    body=row.body,
                )
                send(self.config.smtp_url, msg)
                outbox.mark(session, outbox_id, "sent")
                repository.append_event(
                    session,
                    EventCreate(
                        kind="email.sent",
                        actor="flowstate",
                        account_id=row.account_id,
                        deal_id=row.deal_id,
                        thread_id=row.thread_id,
                        payload={"outbox_id": outbox_id, "to": row.to_addr, "message_id": row.message_id},
                    ),
                )
                workflow_runs.set_status(session, _workflow_id(), "completed")
            return EmailResult(status="sent")
        except NotFound as exc:
            raise ApplicationError(str(exc), type="Undeliverable", non_retryable=True) from exc
        except Undeliverable as exc:
            self._count_attempt(outbox_id, str(exc))
            raise ApplicationError(str(exc), type="Undeliverable", non_retryable=True) from exc
        except Exception as exc:
            self._count_attempt(outbox_id, f"{type(exc).__name__}: {exc}")
            raise

    def _count_attempt(self, outbox_id: int, error: str) -> None:
        try:
            with session_scope(self.engine) as session:
                outbox.mark(session, outbox_id, "queued", error[:2000])
        except Exception as exc:  # the retry goes on; the count is only information
            log.warning("could not record the failed attempt of outbox message %s: %r", outbox_id, exc)

    @activity.defn(name="report_undelivered")
    def report_undelivered(self, outbox_id: int, detail: str) -> None:
        """Mark a message failed and tell its rep (an alert in the inbox, an Event), once."""
        with session_scope(self.engine) as session:
            try:
                msg = outbox.get(session, outbox_id)
            except NotFound:
                return
            if msg.status != "failed":
                outbox.mark(session, outbox_id, "failed", detail[:2000])
                repository.append_event(
                    session,
                    EventCreate(
                        kind="email.failed",
                        actor="flowstate",
                        account_id=msg.account_id,
                        deal_id=msg.deal_id,
                        payload={"outbox_id": outbox_id, "to": msg.to_addr, "error": detail[:500]},
                    ),
                )
            workflow_runs.set_status(session, _workflow_id(), "failed")
            owner = reminders.rep_person(session, msg.rep_id)
            item, created = inbox.file_item(
                session,
                recipient=owner.name,
                rep_id=owner.rep_id,
                kind="alert",
                title=f"Email not delivered: {msg.subject}",
                body=f"To {msg.to_addr or '(no address)'}: {detail}",
                deal_id=msg.deal_id,
                account_id=msg.account_id,
                workflow_id=_workflow_id(),
                dedupe_key=f"undelivered:{outbox_id}",
            )
        if created:
            self.publish(inbox.notification_of(item))

    # --- onboarding ---------------------------------------------------------------------------

    @activity.defn(name="create_onboarding_tasks")
    async def create_onboarding_tasks(self, deal_id: int) -> OnboardingTasks:
        """The won deal's onboarding plan as tasks (once per deal), their workflows started."""
        ids, wanted = await asyncio.to_thread(onboarding_plan.create_tasks, self.engine, deal_id)
        await start_requested(activity.client(), self.engine, self.config, wanted)
        return OnboardingTasks(reminder_ids=ids)

    @activity.defn(name="count_open_reminders")
    def count_open_reminders(self, reminder_ids: list[int]) -> int:
        """How many of the onboarding's tasks are still open."""
        with session_scope(self.engine) as session:
            return reminders.open_count(session, reminder_ids)

    @activity.defn(name="file_onboarding_report")
    def file_onboarding_report(self, deal_id: int, reminder_ids: list[int]) -> None:
        """File the onboarding's status report in the rep's inbox, once."""
        self.publish(onboarding_plan.file_report(self.engine, deal_id, reminder_ids, _workflow_id()))

    # --- follow-up sequences ------------------------------------------------------------------

    @activity.defn(name="sequence_step")
    async def sequence_step(self, req: SequenceStepRequest) -> SequenceStepResult:
        """One step of a follow-up sequence (`workflows.sequence_steps`)."""
        result, notification, started = await sequence_steps.run_step(
            self.engine, self.config, req, _workflow_id()
        )
        if started:
            await start_requested(activity.client(), self.engine, self.config, started)
        self.publish(notification)
        return result

    @activity.defn(name="set_run_status")
    def set_run_status(self, status: str) -> None:
        """Record how the calling workflow ended (`crm.workflow_runs`)."""
        with session_scope(self.engine) as session:
            if workflow_runs.status_of(session, _workflow_id()) != "cancelled":  # the rep's word stands
                workflow_runs.set_status(session, _workflow_id(), status)  # type: ignore[arg-type]

    # --- scheduled agents and the dispatch ----------------------------------------------------

    @activity.defn(name="run_agent")
    def run_agent(self, inp: AgentRunInput) -> AgentRunResult:
        """One run of a scheduled agent for the reps of a time zone (`workflows.agents`)."""
        filed, notifications = agents.run(self.engine, self.config, inp.agent, inp.time_zone)
        for n in notifications:
            self.publish(n)
        return AgentRunResult(filed=filed)

    @activity.defn(name="dispatch_pending")
    async def dispatch_pending(self) -> DispatchResult:
        """Start the workflows the CRM asked for that nobody started (`workflows.starts`); when a
        rep's time zone appeared, give it its agent schedules."""
        zones = await asyncio.to_thread(schedules.rep_zones, self.engine)
        if zones != self._zones:
            await schedules.put_schedules(activity.client(), self.engine, self.config, zones)
            self._zones = zones
        return await start_requested(activity.client(), self.engine, self.config)


def _workflow_id() -> str:
    """The id of the workflow the running activity belongs to."""
    return str(activity.info().workflow_id)
