"""`/api/pipeline`: the configured stages and the figures of the pipeline (crm.analytics).

The figures cover only the deals the caller reads (`Caller.read_rep_ids`): a rep's summary is
their own pipeline, a manager's their team's. The stages are the same for everyone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.auth import CallerDep
from app.api.deps import DealFilterDep, SessionDep
from app.api.responses import errors
from config.files import load_pipeline
from contracts.fields import IsoDate, NonBlank
from contracts.identity import Caller
from crm import analytics
from crm.analytics import GroupBy, Metric
from crm.filters import DealFilter
from crm.schemas import MetricsRow, PipelineSummary, StageOut, StuckDeal

router = APIRouter(prefix="/pipeline", tags=["pipeline"])


@router.get("/stages", response_model=list[StageOut])
async def stages() -> list[StageOut]:
    """The stages of config/pipeline.yaml in order, with probabilities and entry rules."""
    return [
        StageOut(
            key=s.key,
            name=s.name,
            position=i,
            probability=s.probability,
            closed=s.closed,
            won=s.won,
            requires=list(s.requires),
        )
        for i, s in enumerate(load_pipeline().stages)
    ]


#: The answers of the routes over the deals: a filter naming nothing is a 409.
_FILTERED = errors(409, 422, 503)


def _scoped(filter: DealFilter, caller: Caller) -> DealFilter:
    return filter.model_copy(update={"rep_ids": caller.read_rep_ids})


@router.get("/summary", response_model=PipelineSummary, responses=_FILTERED)
async def summary(session: SessionDep, caller: CallerDep, filter: DealFilterDep) -> PipelineSummary:
    """Deal counts, win rate (percent, one decimal), revenue and per-stage counts/values for the
    deals matching the filters (usually `rep`, `office`, `product` or `account`)."""
    scoped = _scoped(filter, caller)
    return await session.run_sync(lambda s: analytics.pipeline_summary(s, filter=scoped))


@router.get("/metrics", response_model=list[MetricsRow], responses=_FILTERED)
async def metrics(
    session: SessionDep,
    caller: CallerDep,
    filter: DealFilterDep,
    group_by: GroupBy | None = None,
    order_by: Annotated[Metric | None, Query(description="sort rows by this metric")] = None,
    descending: bool = True,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> list[MetricsRow]:
    """Deal metrics (counts, win rate, revenue, average/largest won deal, cycle days, open pipeline,
    weighted forecast) of the filtered deals, in one row or one row per group."""
    scoped = _scoped(filter, caller)
    return await session.run_sync(
        lambda s: analytics.deal_metrics(
            s, scoped, group_by, order_by=order_by, descending=descending, limit=limit
        )
    )


@router.get("/stuck", response_model=list[StuckDeal], responses=_FILTERED)
async def stuck(
    session: SessionDep,
    caller: CallerDep,
    filter: DealFilterDep,
    stage: Annotated[NonBlank, Query(description="an open stage, key or name (409 otherwise)")],
    older_than_days: Annotated[int, Query(ge=0)] = 30,
    as_of: Annotated[IsoDate | None, Query(description="default: the latest date in the data")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[StuckDeal]:
    """Open deals in `stage` for more than `older_than_days` days, oldest first."""
    scoped = _scoped(filter, caller)
    return await session.run_sync(
        lambda s: analytics.stuck_deals(s, stage, older_than_days, as_of, filter=scoped, limit=limit)
    )
