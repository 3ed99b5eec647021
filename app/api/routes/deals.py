"""`/api/deals`: opportunities, their stage moves and stage history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import DealFilterDep, Limit, Offset, SessionDep
from crm import repository
from crm.schemas import DealCreate, DealOut, DealUpdate, Page, StageChangeOut, StageMove

router = APIRouter(prefix="/deals", tags=["deals"])


@router.get("", response_model=Page[DealOut])
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
    account, rep, product, office, ... is a 422 naming the parameter."""
    return await session.run_sync(
        lambda s: repository.list_deals(s, filter, limit=limit, offset=offset, sort=sort)
    )


@router.get("/{deal_id}", response_model=DealOut)
async def get_deal(session: SessionDep, deal_id: int) -> DealOut:
    return await session.run_sync(repository.get_deal, deal_id)


@router.post("", response_model=DealOut, status_code=status.HTTP_201_CREATED)
async def create_deal(session: SessionDep, body: DealCreate) -> DealOut:
    """Create a deal in `stage` (default prospecting) under that stage's entry rules; 409 if a rule
    is not met or `external_id` is taken, 422 for an unknown account/product/rep id."""
    return await session.run_sync(repository.create_deal, body)


@router.patch("/{deal_id}", response_model=DealOut)
async def update_deal(session: SessionDep, deal_id: int, body: DealUpdate) -> DealOut:
    """Change fields other than the stage (use POST /stage for that)."""
    return await session.run_sync(repository.update_deal, deal_id, body)


@router.post("/{deal_id}/stage", response_model=DealOut)
async def move_deal_stage(session: SessionDep, deal_id: int, body: StageMove) -> DealOut:
    """Move the deal to another stage, recording history and an event. 409 when the deal is already
    there, when the stage's entry rules (config/pipeline.yaml) are not met, or when a closed deal is
    moved without `reopen: true`."""
    return await session.run_sync(
        lambda s: repository.move_deal_stage(
            s,
            deal_id,
            body.stage,
            body.changed_by,
            body.note,
            value=body.value,
            close_date=body.close_date,
            reopen=body.reopen,
        )
    )


@router.get("/{deal_id}/history", response_model=list[StageChangeOut])
async def deal_history(session: SessionDep, deal_id: int) -> list[StageChangeOut]:
    """Stage changes, oldest first."""
    return await session.run_sync(repository.deal_history, deal_id)
