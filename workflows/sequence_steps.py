"""The work of one step of a follow-up sequence (the `sequence_step` activity): check the deal,
then file a drafted email for approval or create a task. Idempotent per (workflow, step): a
retried step files nothing twice and drafts nothing twice."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import NamedTuple

from sqlalchemy import Engine

from config.files import load_pipeline
from contracts import ProposedAction
from contracts.notifications import Notification
from crm import inbox, repository, workflow_runs
from crm.db import session_scope
from crm.errors import NotFound
from tools import actions, reminders
from tools.deals import DealOut
from workflows.deps import WorkerConfig
from workflows.drafting import Draft, draft_email
from workflows.types import SequenceStepRequest, SequenceStepResult


class _State(NamedTuple):
    deal: DealOut | None
    cancelled: bool
    filed: bool


def _state(engine: Engine, deal_id: int, workflow_id: str, key: str) -> _State:
    """The deal (None when gone), whether the rep cancelled the sequence, and whether this step's
    item is filed already (a retry), read in one transaction."""
    with session_scope(engine) as session:
        try:
            deal: DealOut | None = repository.get_deal(session, deal_id)
        except NotFound:
            deal = None
        cancelled = workflow_runs.status_of(session, workflow_id) == "cancelled"
        return _State(deal, cancelled, inbox.is_filed(session, key))


def _file(
    engine: Engine, deal: DealOut, key: str, workflow_id: str, index: int, draft: Draft
) -> Notification:
    who = deal.account_name or deal.external_id
    with session_scope(engine) as session:
        owner = reminders.rep_person(session, deal.rep_id)
        if draft.action is not None:
            kind, title = "draft", f"Follow-up {index + 1} to {who} is ready: approve to send"
            body, action = draft.text, draft.action.model_dump(mode="json")
        else:
            kind, title = "alert", f"No draft for follow-up {index + 1} to {who}"
            body, action = f"{draft.problem}. Write it yourself or cancel the sequence.", None
        item, _ = inbox.file_item(
            session,
            recipient=owner.name,
            rep_id=owner.rep_id,
            kind=kind,  # type: ignore[arg-type]
            title=title,
            body=body,
            action=action,
            deal_id=deal.id,
            account_id=deal.account_id,
            workflow_id=workflow_id,
            dedupe_key=key,
        )
    return inbox.notification_of(item)


def _task(engine: Engine, deal: DealOut, key: str, title: str) -> list[str]:
    action = ProposedAction(
        kind="create_task",
        summary=title,
        params={
            "deal_id": deal.id,
            "rep_id": deal.rep_id,
            "tasks": [{"title": title, "due": dt.datetime.now(dt.UTC).isoformat()}],
        },
    )
    with session_scope(engine) as session:
        result = actions.execute(session, action, "flowstate", idempotency_key=key)
    return [str(w) for w in result.get("workflows", [])]


async def run_step(
    engine: Engine, config: WorkerConfig, req: SequenceStepRequest, workflow_id: str
) -> tuple[SequenceStepResult, Notification | None, list[str]]:
    """(result, the notification of a newly filed item, workflow ids to start)."""
    key = f"{workflow_id}:step-{req.index}"
    deal, cancelled, filed = await asyncio.to_thread(_state, engine, req.deal_id, workflow_id, key)
    if deal is None:
        return SequenceStepResult(status="stopped", detail="the deal is gone"), None, []
    if cancelled:
        return SequenceStepResult(status="stopped", detail="the rep cancelled it"), None, []
    if deal.stage != req.stage:
        stage = load_pipeline().get(deal.stage)
        name = stage.name if stage else deal.stage
        return SequenceStepResult(status="stopped", detail=f"the deal moved to {name}"), None, []
    if req.step.kind == "task":
        title = (req.step.title or "Follow up").format(
            account=deal.account_name or "the client",
            product=deal.product_name or "the product",
            deal=deal.external_id,
        )
        started = await asyncio.to_thread(_task, engine, deal, key, title)
        return SequenceStepResult(status="done", detail="task created"), None, started
    if filed:  # a retry after the item was filed
        return SequenceStepResult(status="done", detail="already filed"), None, []
    if config.llm is None:
        draft = Draft(problem="no model is configured to write the draft")
    else:
        # in a thread with a loop of its own: the crew and the guards load and run blocking code
        # for seconds, which must not stall the worker's loop (it runs the workflow tasks)
        llm, brief = config.llm, req.step.brief or "a follow-up"
        draft = await asyncio.to_thread(lambda: asyncio.run(draft_email(engine, llm, deal, brief)))
    notification = await asyncio.to_thread(_file, engine, deal, key, workflow_id, req.index, draft)
    return SequenceStepResult(status="done", detail=notification.kind), notification, []
