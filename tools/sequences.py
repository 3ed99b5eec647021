"""Follow-up sequences of deals: asking for one (written with the request for its workflow, in
the caller's transaction) and finding the one that runs. At most one runs per deal."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.files import load_pipeline
from crm import repository, workflow_runs
from crm.errors import Conflict
from crm.models import WorkflowRun
from crm.schemas import WorkflowRunOut

#: Statuses of a sequence's run that count as running.
RUNNING = ("pending", "started")


def running(session: Session, deal_id: int) -> WorkflowRunOut | None:
    """The sequence that runs for the deal, or None."""
    row = session.scalar(
        select(WorkflowRun)
        .where(
            WorkflowRun.kind == "sequence", WorkflowRun.deal_id == deal_id, WorkflowRun.status.in_(RUNNING)
        )
        .order_by(WorkflowRun.id.desc())
        .limit(1)
    )
    return WorkflowRunOut.model_validate(row) if row is not None else None


def cancel(session: Session, deal_id: int) -> WorkflowRunOut:
    """Record that the deal's running sequence is cancelled: its next step sees it and ends the
    sequence (the app also signals it). Raises NotFound("deal"); Conflict when none runs."""
    deal = repository.get_deal(session, deal_id)
    run = running(session, deal_id)
    if run is None:
        raise Conflict(f"no follow-up sequence runs for deal {deal.external_id}")
    workflow_runs.set_status(session, run.workflow_id, "cancelled")
    return run


def request(session: Session, deal_id: int) -> WorkflowRunOut:
    """Ask for a follow-up sequence for an open deal. Raises NotFound("deal"); Conflict when the
    deal is closed or a sequence already runs for it."""
    deal = repository.get_deal(session, deal_id)
    stage = load_pipeline().get(deal.stage)
    if stage is not None and stage.closed:
        raise Conflict(f"deal {deal.external_id} is closed ({stage.name}): there is nothing to follow up")
    if running(session, deal_id) is not None:
        raise Conflict(f"a follow-up sequence already runs for deal {deal.external_id}")
    return workflow_runs.request(session, "sequence", deal_id, deal_id=deal_id)
