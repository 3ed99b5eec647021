"""`/api/deals`: opportunities, their stage moves and stage history, proposals for approval.

Scope (`crm.access`): lists and reads cover the deals of the reps the caller reads
(`Caller.read_rep_ids`); a deal outside them is a 404 like a missing one. Changes (patch, stage
move, sequence, proposal) need the caller to act for the deal's rep: 403 otherwise. Who did it is
always the caller (`Caller.actor`), never a field of the body.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.orm import Session

from app.api.auth import CallerDep
from app.api.deps import AfterCommitDep, DealFilterDep, Limit, Offset, PathId, SessionDep
from app.api.responses import errors, links
from config.files import load_pipeline
from crm import access, repository, workflow_runs
from crm.errors import NotFound
from crm.schemas import (
    DealCreate,
    DealOut,
    DealUpdate,
    InboxItemOut,
    Page,
    ProposalCreate,
    StageChangeOut,
    StageMove,
    WorkflowRunOut,
)
from tools import proposals, sequences

router = APIRouter(prefix="/deals", tags=["deals"], responses=errors(422, 503))


@router.get("", response_model=Page[DealOut], responses=errors(409))
async def list_deals(
    session: SessionDep,
    caller: CallerDep,
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
    """Deals the caller may read matching every filter given, with account/product/rep/stage
    names. An unknown account, rep, product, office, ... is a 409 naming the parameter."""
    scoped = filter.model_copy(update={"rep_ids": caller.read_rep_ids})
    return await session.run_sync(
        lambda s: repository.list_deals(s, scoped, limit=limit, offset=offset, sort=sort)
    )


@router.get("/{deal_id}", response_model=DealOut, responses=errors(404))
async def get_deal(session: SessionDep, caller: CallerDep, deal_id: PathId) -> DealOut:
    """The deal; 404 when it does not exist or is outside what the caller reads."""

    def _get(s: Session) -> DealOut:
        access.readable_deal(s, caller, deal_id)
        return repository.get_deal(s, deal_id)

    return await session.run_sync(_get)


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
async def create_deal(session: SessionDep, caller: CallerDep, body: DealCreate) -> DealOut:
    """Create a deal in `stage` (default prospecting) under that stage's entry rules; 409 if a rule
    is not met, `external_id` is taken, or the stage or an account/product/rep id is unknown. A
    rep's deal is theirs when `rep_id` is left out; a deal for a rep the caller does not act for
    (a rep: another rep; a manager: another team, or no rep) is a 403 naming `rep_id`."""
    rep_id = body.rep_id if body.rep_id is not None else caller.rep_id
    access.check_rep_action(caller, rep_id)
    data = body.model_copy(update={"rep_id": rep_id, "created_by": caller.actor})
    return await session.run_sync(repository.create_deal, data)


@router.patch("/{deal_id}", response_model=DealOut, responses=errors(400, 403, 404, 409))
async def update_deal(session: SessionDep, caller: CallerDep, deal_id: PathId, body: DealUpdate) -> DealOut:
    """Change fields other than the stage (use POST /stage for that). 403 when the caller does not
    act for the deal's rep, or hands it to a rep they do not act for (`rep_id`)."""

    def _update(s: Session) -> DealOut:
        access.check_deal_action(s, caller, deal_id)
        if "rep_id" in body.model_fields_set:
            access.check_rep_action(caller, body.rep_id)
        return repository.update_deal(s, deal_id, body)

    return await session.run_sync(_update)


@router.post("/{deal_id}/stage", response_model=DealOut, responses=errors(400, 403, 404, 409))
async def move_deal_stage(
    session: SessionDep, caller: CallerDep, deal_id: PathId, body: StageMove, after: AfterCommitDep
) -> DealOut:
    """Move the deal to another stage, recording history and an event (by the caller). 409 when
    the stage is unknown, the deal is already there, the stage's entry rules (config/pipeline.yaml)
    are not met, or a closed deal is moved without `reopen: true`; 403 when the caller does not act
    for the deal's rep. Winning the deal starts its onboarding."""

    def _move(s: Session) -> tuple[DealOut, str | None]:
        access.check_deal_action(s, caller, deal_id)
        deal = repository.move_deal_stage(
            s,
            deal_id,
            body.stage,
            caller.actor,
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
async def deal_history(session: SessionDep, caller: CallerDep, deal_id: PathId) -> list[StageChangeOut]:
    """Stage changes, oldest first."""

    def _history(s: Session) -> list[StageChangeOut]:
        access.readable_deal(s, caller, deal_id)
        return repository.deal_history(s, deal_id)

    return await session.run_sync(_history)


@router.get("/{deal_id}/workflows", response_model=list[WorkflowRunOut], responses=errors(404))
async def deal_workflows(session: SessionDep, caller: CallerDep, deal_id: PathId) -> list[WorkflowRunOut]:
    """What runs (or ran) on Temporal for the deal: its reminders' and emails' workflows, its
    onboarding; newest first. `workflow_id` is the id to look up in the Temporal UI."""

    def _runs(s: Session) -> list[WorkflowRunOut]:
        access.readable_deal(s, caller, deal_id)
        return workflow_runs.for_deal(s, deal_id)

    return await session.run_sync(_runs)


@router.post(
    "/{deal_id}/sequence",
    response_model=WorkflowRunOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(403, 404, 409),
)
async def start_sequence(
    session: SessionDep, caller: CallerDep, deal_id: PathId, after: AfterCommitDep
) -> WorkflowRunOut:
    """Start the deal's follow-up sequence (`config/sequences.yaml`: drafted emails that wait in
    the rep's inbox for approval, then a call task). 409 when the deal is closed or a sequence
    already runs for it. It stops by itself when the deal changes stage or closes."""

    def _start(s: Session) -> WorkflowRunOut:
        access.check_deal_action(s, caller, deal_id)
        return sequences.request(s, deal_id)

    run = await session.run_sync(_start)
    after.start([run.workflow_id])
    return run


@router.delete("/{deal_id}/sequence", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403, 404))
async def cancel_sequence(session: SessionDep, caller: CallerDep, deal_id: PathId, request: Request) -> None:
    """Stop the deal's follow-up sequence; 404 when none runs. Drafts already in the inbox stay
    decidable."""

    def _running(s: Session) -> WorkflowRunOut:
        access.check_deal_action(s, caller, deal_id)
        run = sequences.running(s, deal_id)
        if run is None:
            raise NotFound("follow-up sequence of deal", deal_id)
        workflow_runs.set_status(s, run.workflow_id, "cancelled")
        return run

    run = await session.run_sync(_running)
    workflows = request.app.state.workflows
    if workflows is not None:
        await workflows.cancel(run.workflow_id)


@router.post(
    "/{deal_id}/proposals",
    response_model=InboxItemOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(403, 404, 409),
)
async def propose(
    session: SessionDep, caller: CallerDep, deal_id: PathId, body: ProposalCreate
) -> InboxItemOut:
    """Propose an action on the deal (e.g. `{"kind": "move_stage", "params": {"stage":
    "negotiation", "value": 5000, "reason": "why"}}`): checked now against the rules its approval
    will apply, then filed as an "action" item in the caller's inbox (`rep_id` the deal's rep);
    approving it there (`POST /api/inbox/{id}`) runs it once, recorded as the approver's. 409 when
    a rule refuses it now (an entry rule of the target stage names itself in `field`; an unknown
    stage, a closed deal, the stage it is in), 403 when the caller does not act for the deal's
    rep."""
    return await session.run_sync(lambda s: proposals.propose(s, caller, deal_id, body))
