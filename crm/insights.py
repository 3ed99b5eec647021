"""Queries the chat crews need beyond `crm.analytics` and `crm.repository`: deals by opportunity id,
accounts of a sector, purchase history per account, and the signals behind next best actions.

Sync functions over a `Session`, returning pydantic models; no LLM. "Today" for data questions is
`crm.analytics.reference_date` (the latest date in the CRM), as in the analytics.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from config.files import load_pipeline
from crm import analytics
from crm.access import accounts_condition
from crm.errors import NotFound
from crm.filters import DealFilter, deal_conditions
from crm.models import Account, Deal, Product, Reminder
from crm.repository import deal_outs, get_deal
from crm.schemas import AccountBrief, DealOut

# --- lookups ----------------------------------------------------------------------------------


def deal_by_ref(session: Session, ref: int | str) -> DealOut:
    """A deal by database id (int or digits) or by opportunity id (`external_id`, case-insensitive,
    e.g. "1c1i7a6r"). Raises NotFound("deal", ref)."""
    if isinstance(ref, int):
        return get_deal(session, ref)
    text = ref.strip()
    deal_id = session.scalar(select(Deal.id).where(func.upper(Deal.external_id) == text.upper()))
    if deal_id is None and text.isdigit():
        deal_id = session.scalar(select(Deal.id).where(Deal.id == int(text)))
    if deal_id is None:
        raise NotFound("deal", ref)
    return get_deal(session, deal_id)


def accounts_in_sector(
    session: Session, sector: str, *, rep_ids: frozenset[int] | None = None
) -> list[AccountBrief]:
    """Accounts whose sector is `sector` (case-insensitive), sorted by name; [] when none. With
    `rep_ids` (the caller's `read_rep_ids`), only the accounts they may read
    (`crm.access.accounts_condition`)."""
    stmt = select(Account).where(func.lower(Account.sector) == sector.strip().lower())
    visible = accounts_condition(rep_ids)
    if visible is not None:
        stmt = stmt.where(visible)
    rows = session.scalars(stmt.order_by(Account.name)).all()
    return [AccountBrief.model_validate(a) for a in rows]


def account_deals(
    session: Session,
    account_id: int,
    *,
    status: Literal["open", "won", "lost", "closed"] | None = None,
    limit: int = 10,
    rep_ids: frozenset[int] | None = None,
) -> list[DealOut]:
    """Deals of an account, most recent first (close date, else engage date), at most `limit`;
    only the deals of `rep_ids` (the caller's `read_rep_ids`; None: all)."""
    conds = deal_conditions(session, DealFilter(account=account_id, status=status, rep_ids=rep_ids))
    recent = func.coalesce(Deal.close_date, Deal.engage_date)
    return deal_outs(session, conds, [recent.desc().nulls_last(), Deal.id.desc()], limit=limit)


# --- purchase history ---------------------------------------------------------------------------


class AccountPurchases(BaseModel):
    """What an account has bought and has open: counts, revenue (USD), the last win's close date,
    the products won (most won first) and the products never won."""

    account: AccountBrief
    won_deals: int
    won_value: float
    last_won: dt.date | None
    open_deals: int
    products_won: list[str]
    products_not_won: list[str]


def account_purchases(
    session: Session, account_ids: list[int] | None = None, *, rep_ids: frozenset[int] | None = None
) -> list[AccountPurchases]:
    """Purchase history of the given accounts (all accounts when None), sorted by account name.
    With `rep_ids` (the caller's `read_rep_ids`), counted over those reps' deals only: another
    team's wins on a shared account are not theirs to see."""
    pipeline = load_pipeline()
    won = Deal.stage == pipeline.won_key
    on_account = Deal.account_id == Account.id
    if rep_ids is not None:
        on_account = and_(on_account, Deal.rep_id.in_(rep_ids))
    is_open = Deal.stage.in_(pipeline.open_keys)
    stmt = (
        select(
            Account.id,
            Account.name,
            Account.sector,
            func.count(Deal.id).filter(won).label("won"),
            func.coalesce(func.sum(Deal.value).filter(won), 0).label("won_value"),
            func.max(Deal.close_date).filter(won).label("last_won"),
            func.count(Deal.id).filter(is_open).label("open"),
        )
        .outerjoin(Deal, on_account)
        .group_by(Account.id)
        .order_by(Account.name)
    )
    if account_ids is not None:
        stmt = stmt.where(Account.id.in_(account_ids))
    rows = session.execute(stmt).all()
    all_products = list(session.scalars(select(Product.name).order_by(Product.name)))
    won_by_account = _won_per_product(session, [r.id for r in rows], rep_ids)
    out = []
    for r in rows:
        names = _most_won_first(won_by_account.get(r.id, []))
        out.append(
            AccountPurchases(
                account=AccountBrief(id=r.id, name=r.name, sector=r.sector),
                won_deals=r.won,
                won_value=float(r.won_value),
                last_won=r.last_won,
                open_deals=r.open,
                products_won=names,
                products_not_won=[p for p in all_products if p not in names],
            )
        )
    return out


def products_won(session: Session, account_id: int, *, rep_ids: frozenset[int] | None = None) -> list[str]:
    """The products won on one account, most won first (ties by name): `account_purchases`'
    `products_won` of that account in one query; over the deals of `rep_ids` only (None: all)."""
    return _most_won_first(_won_per_product(session, [account_id], rep_ids).get(account_id, []))


def _won_per_product(
    session: Session, account_ids: list[int], rep_ids: frozenset[int] | None
) -> dict[int, list[tuple[str, int]]]:
    """Deals won per product on each of `account_ids` (one query), over the deals of `rep_ids`
    only (None: all): account id -> [(product name, deals won)], accounts without a win left out."""
    conds = [Deal.stage == load_pipeline().won_key, Deal.account_id.in_(account_ids)]
    if rep_ids is not None:
        conds.append(Deal.rep_id.in_(rep_ids))
    per_product = session.execute(
        select(Deal.account_id, Product.name, func.count())
        .join(Product, Deal.product_id == Product.id)
        .where(*conds)
        .group_by(Deal.account_id, Product.name)
    ).all()
    won: dict[int, list[tuple[str, int]]] = {}
    for account_id, product, n in per_product:
        if account_id is not None:  # never, under the IN; the column is nullable
            won.setdefault(account_id, []).append((product, n))
    return won


def _most_won_first(counts: list[tuple[str, int]]) -> list[str]:
    """Product names from (name, deals won), most won first, ties by name."""
    return [name for name, _ in sorted(counts, key=lambda p: (-p[1], p[0]))]


# --- next-best-action signals --------------------------------------------------------------------

SignalKind = Literal["late_stage", "stuck_deal", "no_follow_up", "upsell", "win_back"]

#: Days an open deal may sit in its stage before it counts as stuck (engaging deals of the Maven
#: export have a median age of about 50 days at its end; 60 flags the slow half's tail, not all).
STUCK_AFTER_DAYS = 60
#: An open deal with no pending reminder and older than this needs a follow-up scheduled.
FOLLOW_UP_AFTER_DAYS = 14
#: A lost deal younger than this (days since close) is a win-back candidate.
WIN_BACK_WITHIN_DAYS = 90


class Signal(BaseModel):
    """One reason to act, computed from the CRM.

    `score` 0-100 ranks signals (formulas in `nba_signals`); `reason` states the figures it rests
    on; `action` is the suggested step; `deal` / `account` / `rep_id` the records behind it."""

    kind: SignalKind
    score: int = Field(ge=0, le=100)
    action: str
    reason: str
    account: AccountBrief | None = None
    deal: DealOut | None = None
    rep_id: int | None = None
    figures: dict[str, float | int | str] = {}


def _money(v: float | None) -> str:
    return f"${(v or 0):,.0f}"


def _deal_label(d: DealOut) -> str:
    who = d.account_name or "no account"
    what = f" ({d.product_name})" if d.product_name else ""
    return f"deal {d.external_id} with {who}{what}"


def _deal_amount(d: DealOut, prices: dict[int, float]) -> float:
    """The deal's value, else its product's list price, else 0 (as the pipeline value does)."""
    if d.value is not None:
        return d.value
    return prices.get(d.product_id, 0.0) if d.product_id is not None else 0.0


def nba_signals(
    session: Session,
    *,
    rep_id: int | None = None,
    account_id: int | None = None,
    deal_id: int | None = None,
    as_of: dt.date | None = None,
    limit: int = 5,
    rep_ids: frozenset[int] | None = None,
) -> list[Signal]:
    """Ranked reasons to act for a rep, an account, a deal, or everyone (all None), best first.
    `rep_ids` (the caller's `read_rep_ids`; None: all) narrows every signal to those reps' deals
    and the accounts they work.

    Signals and scores (capped at 100):
    - late_stage: open deal in a stage with probability >= 0.5: 50 + 40 x probability.
    - stuck_deal: open deal in its stage > STUCK_AFTER_DAYS: 40 + days/10 (max +40), +10 when its
      amount (value, else list price) is >= $3,000.
    - no_follow_up: open deal older than FOLLOW_UP_AFTER_DAYS in its stage with no pending
      reminder: 30 + days/10 (max +30). Merged into stuck_deal when both apply.
    - upsell: account with won deals and no open deal: 35 + 2 per won deal (max +35) + 10 when the
      last win is within 180 days.
    - win_back: deal lost within WIN_BACK_WITHIN_DAYS (deal scope or account scope): 30.
    One signal per deal (the highest-scoring), one upsell per account; `as_of` defaults to
    `crm.analytics.reference_date`.
    """
    as_of = as_of or analytics.reference_date(session)
    pipeline = load_pipeline()
    prob = {s.key: s.probability for s in pipeline.stages}
    f = DealFilter(rep=rep_id, account=account_id, rep_ids=rep_ids)
    signals: list[Signal] = []

    prices = {i: float(p or 0) for i, p in session.execute(select(Product.id, Product.list_price))}
    ages: list[tuple[DealOut, int]] = []
    for key in pipeline.open_keys:
        for s in analytics.stuck_deals(session, key, 0, as_of, filter=f, limit=100_000):
            if deal_id is None or s.deal.id == deal_id:
                ages.append((s.deal, s.days_in_stage))
    open_ids = [d.id for d, _ in ages]
    reminded = (
        set(
            session.scalars(
                select(Reminder.deal_id).where(Reminder.deal_id.in_(open_ids), Reminder.status == "pending")
            )
        )
        if open_ids
        else set()
    )

    for d, days in ages:
        p = prob.get(d.stage, 0.0)
        amount = _deal_amount(d, prices)
        account = (
            AccountBrief(id=d.account_id, name=d.account_name) if d.account_id and d.account_name else None
        )
        figures: dict[str, float | int | str] = {"days_in_stage": days, "amount": round(amount, 2)}
        base = {"account": account, "deal": d, "rep_id": d.rep_id, "figures": figures}
        candidates: list[Signal] = []
        if p >= 0.5:
            candidates.append(
                Signal(
                    kind="late_stage",
                    score=min(100, int(50 + 40 * p)),
                    action=f"Push {_deal_label(d)} to close",
                    reason=(
                        f"It is in {d.stage_name} ({int(p * 100)}% win probability), worth {_money(amount)}."
                    ),
                    **base,
                )
            )
        if days > STUCK_AFTER_DAYS:
            score = 40 + min(40, days // 10) + (10 if amount >= 3000 else 0)
            no_fu = d.id not in reminded
            candidates.append(
                Signal(
                    kind="stuck_deal",
                    score=min(100, score),
                    action=f"Re-engage {d.account_name or 'the buyer'} on {_deal_label(d)}",
                    reason=f"It has sat in {d.stage_name} for {days} days, worth {_money(amount)}"
                    + ("; no follow-up is scheduled." if no_fu else "."),
                    **base,
                )
            )
        elif days > FOLLOW_UP_AFTER_DAYS and d.id not in reminded:
            candidates.append(
                Signal(
                    kind="no_follow_up",
                    score=min(100, 30 + min(30, days // 10)),
                    action=f"Schedule a follow-up on {_deal_label(d)}",
                    reason=f"It has been in {d.stage_name} for {days} days with no follow-up scheduled.",
                    **base,
                )
            )
        if candidates:
            signals.append(max(candidates, key=lambda s: s.score))

    if deal_id is None:
        scope_ids = [account_id] if account_id is not None else None
        reps = frozenset({rep_id}) if rep_id is not None else rep_ids
        if reps is not None and account_id is None:
            scope_ids = list(
                session.scalars(
                    select(Deal.account_id)
                    .where(Deal.rep_id.in_(reps), Deal.account_id.isnot(None))
                    .distinct()
                )
            )
        for a in account_purchases(session, scope_ids, rep_ids=rep_ids):
            if a.won_deals == 0 or a.open_deals > 0:
                continue
            recent = a.last_won is not None and (as_of - a.last_won).days <= 180
            score = 35 + min(35, 2 * a.won_deals) + (10 if recent else 0)
            offer = (
                a.products_not_won[0]
                if a.products_not_won
                else (a.products_won[0] if a.products_won else None)
            )
            signals.append(
                Signal(
                    kind="upsell",
                    score=min(100, score),
                    action=f"Propose an upsell to {a.account.name}" + (f" ({offer})" if offer else ""),
                    reason=(
                        f"{a.account.name} has won {a.won_deals} deals worth {_money(a.won_value)}"
                        + (f", last on {a.last_won.isoformat()}" if a.last_won else "")
                        + ", and has no open deal."
                    ),
                    account=a.account,
                    figures={"won_deals": a.won_deals, "won_value": round(a.won_value, 2)},
                )
            )

    if deal_id is not None or account_id is not None:
        lost_keys = pipeline.lost_keys
        conds = [
            Deal.stage.in_(lost_keys),
            Deal.close_date >= as_of - dt.timedelta(days=WIN_BACK_WITHIN_DAYS),
        ]
        if rep_ids is not None:
            conds.append(Deal.rep_id.in_(rep_ids))
        if deal_id is not None:
            conds.append(Deal.id == deal_id)
        else:
            conds.append(Deal.account_id == account_id)
            conds.append(
                ~exists().where(and_(Deal.account_id == account_id, Deal.stage.in_(pipeline.open_keys)))
            )
        for d in deal_outs(session, conds, [Deal.close_date.desc(), Deal.id], limit=2):
            days = (as_of - d.close_date).days if d.close_date else 0
            signals.append(
                Signal(
                    kind="win_back",
                    score=30,
                    action=f"Try to win back {d.account_name or 'the account'} after losing {_deal_label(d)}",
                    reason=f"It was lost {days} days ago.",
                    account=AccountBrief(id=d.account_id, name=d.account_name)
                    if d.account_id and d.account_name
                    else None,
                    deal=d,
                    rep_id=d.rep_id,
                    figures={"days_since_loss": days},
                )
            )

    if deal_id is not None and not signals:
        signals.extend(_closed_deal_signal(session, deal_id, as_of))

    signals.sort(key=lambda s: (-s.score, s.deal.id if s.deal else 0, s.account.name if s.account else ""))
    return signals[:limit]


def _closed_deal_signal(session: Session, deal_id: int, as_of: dt.date) -> list[Signal]:
    """For a closed deal with no other signal: a won deal -> check in and cross-sell (score 40),
    a lost one -> revisit the account (score 25)."""
    d = get_deal(session, deal_id)
    if d.status == "open":
        return []
    account = AccountBrief(id=d.account_id, name=d.account_name) if d.account_id and d.account_name else None
    days = (as_of - d.close_date).days if d.close_date else 0
    figures: dict[str, float | int | str] = {"days_since_close": days}
    if d.status == "won":
        offer = None
        if d.account_id is not None:
            bought = account_purchases(session, [d.account_id])
            if bought and bought[0].products_not_won:
                offer = bought[0].products_not_won[0]
        return [
            Signal(
                kind="upsell",
                score=40,
                action=(
                    f"Check in with {d.account_name or 'the customer'} on {d.product_name or 'the purchase'}"
                    + (f" and propose {offer}" if offer else "")
                ),
                reason=f"{_deal_label(d)} was won {days} days ago for {_money(d.value)}.",
                account=account,
                deal=d,
                rep_id=d.rep_id,
                figures=figures,
            )
        ]
    return [
        Signal(
            kind="win_back",
            score=25,
            action=f"Revisit {d.account_name or 'the account'} to learn why {_deal_label(d)} was lost",
            reason=f"It was lost {days} days ago.",
            account=account,
            deal=d,
            rep_id=d.rep_id,
            figures=figures,
        )
    ]
