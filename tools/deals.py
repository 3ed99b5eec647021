"""Deals for the crews: lookup by opportunity id, lists, an account's deals, the products they
sell, and the check of a stage move before it is proposed to the rep. The CRM types they return
are re-exported here for the crews."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from contracts import Entities, ProposedAction
from contracts.identity import Caller
from crm import insights, repository
from crm.errors import DomainError
from crm.filters import DealFilter
from crm.insights import account_deals
from crm.lookup import find_products
from crm.schemas import DealOut
from observability.tracing import traced

__all__ = [
    "DealOut",
    "DealPick",
    "StageMoveCheck",
    "account_deals",
    "check_stage_move",
    "deal_for_request",
    "deal_of_action",
    "find_deal",
    "find_products",
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


def deal_of_action(session: Session, action: ProposedAction) -> DealOut | None:
    """The deal an action is about (its params' `deal_id`, else `deal`: id or opportunity id),
    or None when it names none, or one that does not exist (the action itself then fails)."""
    for key in ("deal_id", "deal"):
        ref = action.params.get(key)
        if isinstance(ref, int | str) and not isinstance(ref, bool) and str(ref).strip():
            try:
                return find_deal(session, ref)
            except DomainError:
                return None
    return None


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
def check_stage_move(
    session: Session, deal_ref: int | str, to_stage: str, *, value: float | None = None
) -> StageMoveCheck:
    """Dry-run `crm.repository.move_deal_stage` inside a savepoint that is always rolled back, so
    the very rules the real move applies (entry requirements, closed deals, same stage) decide,
    and nothing changes. `value`: the deal value (USD) the move would set, as the approved action
    will. Never raises for a domain error: it is the `reason`."""
    try:
        deal = find_deal(session, deal_ref)
    except DomainError as exc:
        return StageMoveCheck(ok=False, reason=str(exc))
    savepoint = session.begin_nested()
    try:
        after = repository.move_deal_stage(session, deal.id, to_stage, changed_by="dry-run", value=value)
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


class DealPick(BaseModel):
    """The deal a request is about: `deal` when the words settle one; else `candidates`, the open
    deals it could be (several: ask which; none: the account has no open deal). `named` is False
    when the message names no deal and no account (ask which, or take a record of earlier turns)."""

    deal: DealOut | None = None
    candidates: list[DealOut] = []
    named: bool = True


#: Open deals listed when asking which one is meant.
MAX_CANDIDATES = 5


@traced()
def deal_for_request(session: Session, entities: Entities, caller: Caller | None = None) -> DealPick:
    """The deal an action request names: its opportunity id; else the account's open deal of the
    product named ("the open Hatfan MG Advanced deal"), or its only open deal. An account with
    several such open deals gives them as `candidates` (the caller's own first), never a guess.
    Raises nothing: an unknown opportunity id is no deal and no candidates."""
    ref = entities.first("deal")
    if ref is not None:
        try:
            return DealPick(deal=find_deal(session, ref.key))
        except DomainError:
            return DealPick()
    account = entities.first("account")
    if account is None or account.id is None:
        return DealPick(named=False)
    open_deals = account_deals(session, account.id, status="open", limit=50)
    product = entities.first("product")
    if product is not None:
        open_deals = [d for d in open_deals if (d.product_name or "").lower() == product.key.lower()]
    if caller is not None:
        mine = [d for d in open_deals if caller.may_act_for_rep(d.rep_id)]
        open_deals = mine + [d for d in open_deals if d not in mine]
    if len(open_deals) == 1:
        return DealPick(deal=open_deals[0])
    return DealPick(candidates=open_deals[:MAX_CANDIDATES])
