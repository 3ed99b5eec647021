"""`/api/deals`: opportunities, their stage moves and stage history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.orm import Session

from app.api.deps import AfterCommitDep, DealFilterDep, Limit, Offset, PathId, SessionDep
from app.api.responses import errors, links
from config.files import load_pipeline
from crm import repository, workflow_runs
from crm.errors import NotFound
from crm.schemas import DealCreate, DealOut, DealUpdate, Page, StageChangeOut, StageMove, WorkflowRunOut
from tools import sequences

router = APIRouter(prefix="/deals", tags=["deals"], responses=errors(422, 503))


@router.get("", response_model=Page[DealOut], responses=errors(409))
async def list_deals(
    session: SessionDep,
    filter: DealFilterDep,
    limit: Limit = 50,
    offset: Offset = 0,
    sort: Annotated[
        str,
        Query(
            pattern=r"^-?(id|engage_date|close_date|value|updated_at)$",
            description="id, engage_date, close_date, value or updated_at; prefix - for descending",
        ),
    ] = "id",
) -> Page[DealOut]:
    """Deals matching every filter given, with account/product/rep/stage names. An unknown
    account, rep, product, office, ... is a 409 naming the parameter."""
    return await session.run_sync(
        lambda s: repository.list_deals(s, filter, limit=limit, offset=offset, sort=sort)
    )


@router.get("/{deal_id}", response_model=DealOut, responses=errors(404))
async def get_deal(session: SessionDep, deal_id: PathId) -> DealOut:
    return await session.run_sync(repository.get_deal, deal_id)


_DEAL = links(
    "deal_id",
    "GET /deals/{deal_id}",
    "PATCH /deals/{deal_id}",
    "POST /deals/{deal_id}/stage",
    "GET /deals/{deal_id}/history",
)


@router.post(
    "",
    response_model=DealOut,
    status_code=status.HTTP_201_CREATED,
    responses={201: {"links": _DEAL}, **errors(400, 409)},
)
async def create_deal(session: SessionDep, body: DealCreate) -> DealOut:
    """Create a deal in `stage` (default prospecting) under that stage's entry rules; 409 if a rule
    is not met, `external_id` is taken, or the stage or an account/product/rep id is unknown."""
    return await session.run_sync(repository.create_deal, body)


@router.patch("/{deal_id}", response_model=DealOut, responses=errors(400, 404, 409))
async def update_deal(session: SessionDep, deal_id: PathId, body: DealUpdate) -> DealOut:
    """Change fields other than the stage (use POST /stage for that)."""
    return await session.run_sync(repository.update_deal, deal_id, body)


@router.post("/{deal_id}/stage", response_model=DealOut, responses=errors(400, 404, 409))
async def move_deal_stage(
    session: SessionDep, deal_id: PathId, body: StageMove, after: AfterCommitDep
) -> DealOut:
    """Move the deal to another stage, recording history and an event. 409 when the stage is
    unknown, the deal is already there, the stage's entry rules (config/pipeline.yaml) are not met,
    or a closed deal is moved without `reopen: true`. Winning the deal starts its onboarding."""

    def _move(s: Session) -> tuple[DealOut, str | None]:
        deal = repository.move_deal_stage(
            s,
            deal_id,
            body.stage,
            body.changed_by,
            body.note,
            value=body.value,
            close_date=body.close_date,
            reopen=body.reopen,
        )
        won = deal.stage == load_pipeline().won_key
        return deal, workflow_runs.workflow_id_of(s, "onboarding", deal.id) if won else None

    deal, onboarding = await session.run_sync(_move)
    after.start([onboarding] if onboarding else [])
    return deal


@router.get("/{deal_id}/history", response_model=list[StageChangeOut], responses=errors(404))
async def deal_history(session: SessionDep, deal_id: PathId) -> list[StageChangeOut]:
    """Stage changes, oldest first."""
    return await session.run_sync(repository.deal_history, deal_id)


@router.get("/{deal_id}/workflows", response_model=list[WorkflowRunOut], responses=errors(404))
async def deal_workflows(session: SessionDep, deal_id: PathId) -> list[WorkflowRunOut]:
    """What runs (or ran) on Temporal for the deal: its reminders' and emails' workflows, its
    onboarding; newest first. `workflow_id` is the id to look up in the Temporal UI."""

    def _runs(s: Session) -> list[WorkflowRunOut]:
        repository.get_deal(s, deal_id)
        return workflow_runs.for_deal(s, deal_id)

    return await session.run_sync(_runs)


@router.post(
    "/{deal_id}/sequence",
    response_model=WorkflowRunOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(404, 409),
)
async def start_sequence(session: SessionDep, deal_id: PathId, after: AfterCommitDep) -> WorkflowRunOut:
    """Start the deal's follow-up sequence (`config/sequences.yaml`: drafted emails that wait in
    the rep's inbox for approval, then a call task). 409 when the deal is closed or a sequence
    already runs for it. It stops by itself when the deal changes stage or closes."""
    run = await session.run_sync(sequences.request, deal_id)
    after.start([run.workflow_id])
    return run


@router.delete("/{deal_id}/sequence", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def cancel_sequence(session: SessionDep, deal_id: PathId, request: Request) -> None:
    """Stop the deal's follow-up sequence; 404 when none runs. Drafts already in the inbox stay
    decidable."""

    def _running(s: Session) -> WorkflowRunOut:
        repository.get_deal(s, deal_id)
        run = sequences.running(s, deal_id)
        if run is None:
            raise NotFound("follow-up sequence of deal", deal_id)
        workflow_runs.set_status(s, run.workflow_id, "cancelled")
        return run

    run = await session.run_sync(_running)
    workflows = request.app.state.workflows
    if workflows is not None:
        await workflows.cancel(run.workflow_id)
