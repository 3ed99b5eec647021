"""Starting the workflows the CRM asked for (`crm.workflow_runs`): by the app right after the
commit that asked, and by the dispatch schedule for any start that was missed.

Each workflow id is unique on the cluster and started with REJECT_DUPLICATE, so a second start
(the app and the dispatch racing, a retried activity) is refused by Temporal and only marks the
run as started: nothing runs twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine, select
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from config.files import load_reminders, load_sequences
from crm import workflow_runs
from crm.db import session_scope
from crm.models import Deal, Reminder
from crm.schemas import WorkflowRunOut
from workflows.deps import WorkerConfig
from workflows.types import (
    DispatchResult,
    OnboardingInput,
    ReminderInput,
    Rung,
    SequenceInput,
    SequenceStepSpec,
)

log = logging.getLogger(__name__)

#: At most this many requested workflows are started per dispatch.
DISPATCH_BATCH = 500


def _inputs(
    engine: Engine, config: WorkerConfig, runs: list[WorkflowRunOut]
) -> list[tuple[WorkflowRunOut, str, Any]]:
    """(run, workflow type, argument) for each run whose record still exists."""
    ladder = [
        Rung(after_s=step.after.total_seconds(), notify=step.notify)
        for step in load_reminders(config.reminders_config).escalation
    ]
    out: list[tuple[WorkflowRunOut, str, Any]] = []
    reminder_ids = [r.reminder_id for r in runs if r.kind == "reminder" and r.reminder_id is not None]
    deal_ids = [r.deal_id for r in runs if r.kind == "sequence" and r.deal_id is not None]
    steps = [
        SequenceStepSpec(after_s=s.after.total_seconds(), kind=s.kind, brief=s.brief, title=s.title)
        for s in load_sequences(config.sequences_config).steps
    ]
    with session_scope(engine) as session:
        stages = dict(session.execute(select(Deal.id, Deal.stage).where(Deal.id.in_(deal_ids))).all())
        due = dict(
            session.execute(select(Reminder.id, Reminder.due_at).where(Reminder.id.in_(reminder_ids))).all()
        )
    for run in runs:
        arg: Any = None
        if run.kind == "reminder" and run.reminder_id in due:
            arg = ReminderInput(reminder_id=run.reminder_id, due_at=due[run.reminder_id], ladder=ladder)
        elif run.kind == "email" and run.outbox_id is not None:
            arg = run.outbox_id
        elif run.kind == "onboarding" and run.deal_id is not None:
            arg = OnboardingInput(deal_id=run.deal_id, check_every_s=config.onboarding_check_s)
        elif run.kind == "sequence" and run.deal_id in stages:
            arg = SequenceInput(deal_id=run.deal_id, stage=stages[run.deal_id], steps=steps)
        if arg is not None:
            out.append((run, run.kind, arg))
    return out


def _mark(engine: Engine, workflow_ids: list[str]) -> None:
    with session_scope(engine) as session:
        for wid in workflow_ids:
            workflow_runs.set_status(session, wid, "started")


async def start_runs(
    client: Client, engine: Engine, config: WorkerConfig, runs: list[WorkflowRunOut]
) -> DispatchResult:
    """Start each requested run (those already running or finished are left alone) and mark them
    started. Raises what the client raises when the cluster does not answer; runs not marked stay
    pending for the next dispatch."""
    if not runs:
        return DispatchResult()
    prepared = await asyncio.to_thread(_inputs, engine, config, runs)
    result = DispatchResult()

    async def _one(run: WorkflowRunOut, wf_type: str, arg: Any) -> str:
        try:
            await client.start_workflow(
                wf_type,
                arg,
                id=run.workflow_id,
                task_queue=config.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            result.started += 1
        except WorkflowAlreadyStartedError:
            result.already += 1
        return run.workflow_id

    done = await asyncio.gather(*(_one(*p) for p in prepared))
    await asyncio.to_thread(_mark, engine, list(done))
    return result


async def start_requested(
    client: Client, engine: Engine, config: WorkerConfig, workflow_ids: list[str] | None = None
) -> DispatchResult:
    """Start the runs still `pending`: those among `workflow_ids` (what one write just asked for),
    or every one (at most DISPATCH_BATCH, oldest first: the dispatch)."""
    if workflow_ids is not None and not workflow_ids:
        return DispatchResult()
    limit = DISPATCH_BATCH if workflow_ids is None else len(workflow_ids)

    def _load() -> list[WorkflowRunOut]:
        with session_scope(engine) as session:
            return workflow_runs.pending(session, limit, workflow_ids)

    runs = await asyncio.to_thread(_load)
    return await start_runs(client, engine, config, runs)


def requested_by(result: dict[str, Any]) -> list[str]:
    """The workflow ids an executed action's result asked for (`tools.actions.execute`)."""
    return [str(w) for w in result.get("workflows") or []]
