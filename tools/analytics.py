"""Pipeline analytics for the crews: deal metrics, pipeline summary, stuck deals, forecast.

Every figure a crew states comes from here (SQL in `crm.analytics`), never from the model.
Definitions are those of `crm.analytics` (win rate = 100 * won / (won + lost), percent; revenue =
sum of won deal values, USD; cycle time = close_date - engage_date of won deals, days; forecast =
open deal value x stage probability of `config/pipeline.yaml`).
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel
from sqlalchemy.orm import Session

from config.files import load_pipeline
from crm import analytics
from crm.analytics import GroupBy, Metric
from crm.filters import DealFilter
from crm.schemas import MetricsRow, PipelineSummary, StuckDeal
from observability.tracing import traced

__all__ = [
    "Forecast",
    "ForecastStage",
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
    as_of = analytics.reference_date(session)  # once for every stage
    found: list[StuckDeal] = []
    for key in stages:
        found.extend(analytics.stuck_deals(session, key, older_than_days, as_of, filter=filter, limit=limit))
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
