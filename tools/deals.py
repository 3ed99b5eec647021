"""Deals for the crews: lookup by opportunity id, lists, and the check of a stage move before it
is proposed to the rep."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from crm import insights, repository
from crm.errors import DomainError
from crm.filters import DealFilter
from crm.schemas import DealOut
from observability.tracing import traced
from tools._base import CRMTool

__all__ = [
    "DealLookupTool",
    "StageMoveCheck",
    "StageMoveCheckTool",
    "check_stage_move",
    "find_deal",
    "list_deals",
]


@traced()
def find_deal(session: Session, ref: int | str) -> DealOut:
    """A deal by id or opportunity id (case-insensitive). Raises NotFound."""
    return insights.deal_by_ref(session, ref)


@traced()
def list_deals(
    session: Session, filter: DealFilter, *, limit: int = 10, sort: str = "-engage_date"
) -> list[DealOut]:
    """Deals matching `filter`, sorted (`crm.repository.DEAL_SORTS`, "-" = descending)."""
    return list(repository.list_deals(session, filter, limit=limit, sort=sort).items)


class StageMoveCheck(BaseModel):
    """Whether `deal` may move to `to_stage` now. `ok` False -> `reason` says which rule (or
    lookup) failed; `fills` lists what the move would set by itself (e.g. engage_date = today)."""

    ok: bool
    reason: str = ""
    deal: DealOut | None = None
    to_stage: str | None = None
    to_stage_name: str | None = None
    fills: dict[str, Any] = {}


@traced()
def check_stage_move(session: Session, deal_ref: int | str, to_stage: str) -> StageMoveCheck:
    """Dry-run `crm.repository.move_deal_stage` inside a savepoint that is always rolled back, so
    the very rules the real move applies (entry requirements, closed deals, same stage) decide,
    and nothing changes. Never raises for a domain error: it is the `reason`."""
    try:
        deal = find_deal(session, deal_ref)
    except DomainError as exc:
        return StageMoveCheck(ok=False, reason=str(exc))
    savepoint = session.begin_nested()
    try:
        after = repository.move_deal_stage(session, deal.id, to_stage, changed_by="dry-run")
    except DomainError as exc:
        savepoint.rollback()
        return StageMoveCheck(ok=False, reason=str(exc), deal=deal)
    savepoint.rollback()
    session.expire_all()
    fills = {
        k: getattr(after, k)
        for k in ("engage_date", "close_date", "value")
        if getattr(after, k) != getattr(deal, k)
    }
    return StageMoveCheck(
        ok=True, deal=deal, to_stage=after.stage, to_stage_name=after.stage_name, fills=fills
    )


# --- CrewAI tools -----------------------------------------------------------------------------


class DealRefArgs(BaseModel):
    deal: str = Field(description="opportunity id, e.g. 1C1I7A6R")


class DealLookupTool(CRMTool):
    name: str = "deal_lookup"
    description: str = "A deal by opportunity id: account, product, rep, stage, dates and value."
    args_schema: type[BaseModel] = DealRefArgs

    def _run(self, **kwargs: Any) -> str:
        args = DealRefArgs(**kwargs)
        return self.call_in_session(lambda s: find_deal(s, args.deal))


class StageMoveArgs(DealRefArgs):
    stage: str = Field(description="target stage key or name, e.g. negotiation")


class StageMoveCheckTool(CRMTool):
    name: str = "check_stage_move"
    description: str = "Checks (without changing anything) whether a deal may move to a stage."
    args_schema: type[BaseModel] = StageMoveArgs

    def _run(self, **kwargs: Any) -> str:
        args = StageMoveArgs(**kwargs)
        return self.call_in_session(lambda s: check_stage_move(s, args.deal, args.stage))
