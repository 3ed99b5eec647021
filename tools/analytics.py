"""Pipeline analytics for the crews: deal metrics, pipeline summary, stuck deals, forecast.

Every figure a crew states comes from here (SQL in `crm.analytics`), never from the model.
Definitions are those of `crm.analytics` (win rate = 100 * won / (won + lost), percent; revenue =
sum of won deal values, USD; cycle time = close_date - engage_date of won deals, days; forecast =
open deal value x stage probability of `config/pipeline.yaml`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from config.files import load_pipeline
from crm import analytics
from crm.analytics import GroupBy, Metric
from crm.filters import DealFilter, FilterStatus
from crm.schemas import MetricsRow, PipelineSummary, StuckDeal
from observability.tracing import traced
from tools._base import CRMTool

__all__ = [
    "DealMetricsTool",
    "Forecast",
    "ForecastStage",
    "ForecastTool",
    "PipelineSummaryTool",
    "StuckDealsTool",
    "deal_metrics",
    "forecast",
    "pipeline_summary",
    "reference_date",
    "stuck_deals",
]


@traced()
def deal_metrics(
    session: Session,
    filter: DealFilter | None = None,
    group_by: GroupBy | None = None,
    *,
    order_by: Metric | None = None,
    descending: bool = True,
    limit: int | None = None,
) -> list[MetricsRow]:
    """`crm.analytics.deal_metrics`: one `MetricsRow` (or one per group) for the matching deals.
    Raises crm.errors.Invalid for an unknown name in the filter."""
    return analytics.deal_metrics(
        session, filter, group_by, order_by=order_by, descending=descending, limit=limit
    )


@traced()
def pipeline_summary(session: Session, filter: DealFilter | None = None) -> PipelineSummary:
    """Totals and per-stage counts/values of the matching deals (`crm.analytics.pipeline_summary`)."""
    return analytics.pipeline_summary(session, filter=filter)


def reference_date(session: Session) -> dt.date:
    """ "Today" for questions about the data (the latest date in the CRM; see crm.analytics)."""
    return analytics.reference_date(session)


@traced()
def stuck_deals(
    session: Session,
    older_than_days: int,
    stage: str | None = None,
    filter: DealFilter | None = None,
    *,
    limit: int = 50,
) -> list[StuckDeal]:
    """Open deals in `stage` (every open stage when None) for more than `older_than_days` days,
    longest-waiting first, at most `limit`. Raises Invalid for an unknown or closed stage."""
    stages = [stage] if stage else load_pipeline().open_keys
    found: list[StuckDeal] = []
    for key in stages:
        found.extend(analytics.stuck_deals(session, key, older_than_days, filter=filter, limit=limit))
    found.sort(key=lambda s: (-s.days_in_stage, s.deal.id))
    return found[:limit]


class ForecastStage(BaseModel):
    """Open deals of one stage: count, value (USD, list price when a deal has none), the stage's
    probability (0-1) and weighted value = value x probability."""

    stage: str
    name: str
    deals: int
    value: float
    probability: float
    weighted: float


class Forecast(BaseModel):
    """Weighted forecast of the open pipeline: per stage and in total (USD)."""

    by_stage: list[ForecastStage]
    open_deals: int
    open_value: float
    weighted_value: float


@traced()
def forecast(session: Session, filter: DealFilter | None = None) -> Forecast:
    """Expected revenue of the open deals matching `filter`: sum of value x stage probability
    (probabilities from config/pipeline.yaml, the common weighted-pipeline defaults)."""
    base = (filter or DealFilter()).model_copy(update={"status": "open"})
    rows = {r.group: r for r in analytics.deal_metrics(session, base, "stage")}
    stages = []
    for s in load_pipeline().stages:
        if s.closed:
            continue
        r = rows.get(s.key)
        stages.append(
            ForecastStage(
                stage=s.key,
                name=s.name,
                deals=r.open if r else 0,
                value=r.open_pipeline_value if r else 0.0,
                probability=s.probability,
                weighted=r.weighted_forecast if r else 0.0,
            )
        )
    return Forecast(
        by_stage=stages,
        open_deals=sum(s.deals for s in stages),
        open_value=sum(s.value for s in stages),
        weighted_value=sum(s.weighted for s in stages),
    )


# --- CrewAI tools -----------------------------------------------------------------------------


class DealSliceArgs(BaseModel):
    """Which deals (every field optional; names are matched case-insensitively)."""

    rep: str | None = Field(None, description="sales rep name")
    account: str | None = Field(None, description="account name")
    product: str | None = Field(None, description="product name")
    office: str | None = Field(None, description="regional office, e.g. West")
    manager: str | None = Field(None, description="manager name")
    sector: str | None = Field(None, description="account sector")
    stage: str | None = Field(None, description="pipeline stage key or name")
    status: FilterStatus | None = Field(None, description="open, won, lost or closed")
    engaged_from: dt.date | None = None
    engaged_to: dt.date | None = None
    closed_from: dt.date | None = None
    closed_to: dt.date | None = None

    def to_filter(self) -> DealFilter:
        data: dict[str, Any] = self.model_dump(exclude_none=True)
        stage = data.pop("stage", None)
        if stage:
            data["stages"] = [stage]
        return DealFilter(**data)


class DealMetricsArgs(DealSliceArgs):
    group_by: GroupBy | None = Field(None, description="group rows by this field")
    order_by: Metric | None = Field(None, description="sort groups by this metric, highest first")
    limit: int | None = Field(None, ge=1, le=50)


class DealMetricsTool(CRMTool):
    name: str = "deal_metrics"
    description: str = (
        "Deal counts (deals, open, won, lost), win rate %, won revenue, average and largest won deal, "
        "average cycle days, open pipeline value and weighted forecast for a slice of deals, "
        "optionally grouped (rep, office, manager, product, account, sector, stage, month)."
    )
    args_schema: type[BaseModel] = DealMetricsArgs

    def _run(self, **kwargs: Any) -> str:
        args = DealMetricsArgs(**kwargs)
        return self.call_in_session(
            lambda s: deal_metrics(
                s, args.to_filter(), args.group_by, order_by=args.order_by, limit=args.limit
            )
        )


class PipelineSummaryTool(CRMTool):
    name: str = "pipeline_summary"
    description: str = (
        "Deal counts and values per pipeline stage, win rate and won revenue of a slice of deals."
    )
    args_schema: type[BaseModel] = DealSliceArgs

    def _run(self, **kwargs: Any) -> str:
        args = DealSliceArgs(**kwargs)
        return self.call_in_session(lambda s: pipeline_summary(s, args.to_filter()))


class StuckDealsArgs(DealSliceArgs):
    older_than_days: int = Field(90, ge=0, description="days in the current stage")


class StuckDealsTool(CRMTool):
    name: str = "stuck_deals"
    description: str = "Open deals that have sat in their stage longer than a number of days, oldest first."
    args_schema: type[BaseModel] = StuckDealsArgs

    def _run(self, **kwargs: Any) -> str:
        args = StuckDealsArgs(**kwargs)
        f = args.to_filter().model_copy(update={"stages": None})
        return self.call_in_session(lambda s: stuck_deals(s, args.older_than_days, args.stage, f, limit=20))


class ForecastTool(CRMTool):
    name: str = "forecast"
    description: str = "Weighted forecast of open deals: value x stage probability, per stage and total."
    args_schema: type[BaseModel] = DealSliceArgs

    def _run(self, **kwargs: Any) -> str:
        args = DealSliceArgs(**kwargs)
        return self.call_in_session(lambda s: forecast(s, args.to_filter()))
