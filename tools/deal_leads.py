"""Open deals scored as leads ("which leads look strongest"), computed from the CRM.

Score of an open deal as a lead = up to 100:
- account known +15; the account's past wins: +5 per won deal, at most +25;
- organisation size: >= 1,000 employees +10;
- product value: list price >= $1,000 +10;
- rep's win rate on closed deals x 0.4 (0-40: a 60% closer adds 24).
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import analytics, insights, repository
from crm.filters import DealFilter
from crm.models import Account, Product, SalesRep

__all__ = ["DealLead", "score_deal_leads"]


class DealLead(BaseModel):
    """An open deal scored as a lead."""

    deal: str
    account: str | None
    product: str | None
    stage: str
    score: int = Field(ge=0, le=100)
    reasons: list[str]


def score_deal_leads(session: Session, f: DealFilter, *, limit: int = 5) -> list[DealLead]:
    """Open deals matching `f` scored as leads (formula in the module docstring), best first
    (ties by opportunity id), at most `limit`. Raises crm.errors.Invalid for an unknown name in
    `f`."""
    deals = repository.list_deals(
        session, f.model_copy(update={"status": "open"}), limit=500, sort="id"
    ).items
    accounts = {a.id: a for a in session.scalars(select(Account)).all()}
    prices = {p.id: float(p.list_price or 0) for p in session.scalars(select(Product)).all()}
    wins = {p.account.id: p.won_deals for p in insights.account_purchases(session)}
    rates = {
        r.group: r.win_rate
        for r in analytics.deal_metrics(session, DealFilter(), "rep")
        if r.group is not None
    }
    rep_names = {r.id: r.name for r in session.scalars(select(SalesRep)).all()}
    leads = []
    for d in deals:
        score, reasons = 0, []
        acc = accounts.get(d.account_id) if d.account_id else None
        if acc is not None:
            score += 15
            reasons.append(f"account {acc.name} known (+15)")
            won = wins.get(acc.id, 0)
            if won:
                pts = min(25, 5 * won)
                score += pts
                reasons.append(f"{won} past wins with {acc.name} (+{pts})")
            if acc.employees and acc.employees >= 1000:
                score += 10
                reasons.append(f"{acc.employees:,} employees (+10)")
        price = prices.get(d.product_id or -1, 0.0)
        if price >= 1000:
            score += 10
            reasons.append(f"{d.product_name} lists at ${price:,.0f} (+10)")
        rate = rates.get(rep_names.get(d.rep_id or -1, ""))
        if rate is not None:
            pts = round(rate * 0.4)
            score += pts
            reasons.append(f"rep {d.rep_name} wins {rate:.1f}% of closed deals (+{pts})")
        leads.append(
            DealLead(
                deal=d.external_id,
                account=d.account_name,
                product=d.product_name,
                stage=d.stage_name,
                score=min(100, score),
                reasons=reasons,
            )
        )
    leads.sort(key=lambda lead: (-lead.score, lead.deal))
    return leads[:limit]
