"""The facts behind the pipeline views and the chat: a small query layer over a sync `Session`.

The core is `deal_metrics(session, filter, group_by)`: any slice of deals (`DealFilter`: rep,
manager, office, product, series, account, sector, stages, status, engage/close date ranges),
optionally grouped, gives the same `MetricsRow` figures. Most sales questions are one call:

    "How many deals has Kary won?"          deal_metrics(s, DealFilter(rep="Kary ..."))[0].won
    "Win rate of the Central office?"       deal_metrics(s, DealFilter(office="Central"))[0].win_rate
    "Top agent by revenue in West?"         deal_metrics(s, DealFilter(office="West"), "rep",
                                                         order_by="won_value", limit=1)[0].group
    "Deals engaged in March 2017?"          deal_metrics(s, DealFilter(engaged_from=..., engaged_to=...))

Definitions (the data dictionary of `shared/eval/README.md` and `config/pipeline.yaml`):
- open = in a stage that is not closed; won = in the won stage; lost = in a lost stage.
- win rate = 100 * won / (won + lost), percent; None when no deal is closed. Kept at full precision
  in `MetricsRow`; `pipeline_summary` rounds it to one decimal (a presentation figure).
- revenue (`won_value`) = sum of `value` of won deals, USD. Lost deals carry value 0 (the export's
  close value); they never enter won averages or maxima.
- cycle time = close_date - engage_date of won deals with both dates, in days.
- open pipeline value = open deals at `value`, or the product's list price when the deal has no
  value yet (0 when neither is known); weighted forecast = that x the stage probability.
- "today" for data questions: `reference_date` (the latest date in the data), because an
  imported history (the Maven export ends 2017-12-31) is not as of the wall clock.

Every name (rep, account, product) may be given as an id or a name (case-insensitive; see
`crm.lookup`); unknown names raise `crm.errors.Inconsistent(field)` (an `Invalid`) in filters and
`NotFound` where the name is the subject (`account_profile("Nope")`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, Date, case, cast, func, literal, select
from sqlalchemy.orm import Session

from config.files import PipelineConfig, load_pipeline
from crm.access import account_readable, accounts_condition
from crm.errors import Inconsistent, Invalid, NotFound
from crm.filters import DealFilter, deal_conditions, deal_select, status_condition
from crm.lookup import find_accounts, find_products, find_reps, get_by_ref
from crm.models import Account, Contact, Deal, DealStageHistory, Product, SalesRep
from crm.repository import account_out, deal_outs, get_rep
from crm.schemas import (
    AccountBrief,
    AccountProfile,
    MetricsRow,
    PipelineSummary,
    RepBrief,
    RepProfile,
    SectorCount,
    StageSummary,
    StuckDeal,
)

__all__ = [
    "GROUP_BYS",
    "METRICS",
    "DealFilter",
    "GroupBy",
    "Metric",
    "account_profile",
    "accounts_by_sector",
    "deal_metrics",
    "find_accounts",
    "find_products",
    "find_reps",
    "list_managers",
    "list_offices",
    "list_sectors",
    "list_series",
    "parent_account",
    "pipeline_summary",
    "reference_date",
    "rep_profile",
    "stuck_deals",
    "subsidiaries",
    "team_of",
]

GroupBy = Literal[
    "rep",
    "office",
    "manager",
    "product",
    "series",
    "account",
    "sector",
    "stage",
    "engage_month",
    "close_month",
]
GROUP_BYS: tuple[str, ...] = get_args(GroupBy)
Metric = Literal[
    "deals",
    "open",
    "won",
    "lost",
    "win_rate",
    "won_value",
    "avg_won_value",
    "max_won_value",
    "avg_cycle_days",
    "open_pipeline_value",
    "weighted_forecast",
]
METRICS: tuple[str, ...] = get_args(Metric)

#: The SQL expression each grouping labels deals with (text; NULL = "no value", e.g. no account).
_GROUP_COLUMNS: dict[str, Any] = {
    "rep": SalesRep.name,
    "office": SalesRep.regional_office,
    "manager": SalesRep.manager,
    "product": Product.name,
    "series": Product.series,
    "account": Account.name,
    "sector": Account.sector,
    "stage": Deal.stage,
    "engage_month": func.to_char(Deal.engage_date, "YYYY-MM"),
    "close_month": func.to_char(Deal.close_date, "YYYY-MM"),
}


def _probability_case(pipeline: PipelineConfig) -> ColumnElement[Any]:
    """Stage probability (0-1) from config/pipeline.yaml, as SQL."""
    whens = [(Deal.stage == s.key, literal(Decimal(str(s.probability)))) for s in pipeline.stages]
    return case(*whens, else_=literal(Decimal(0)))


#: `_metric_columns` per pipeline configuration (keyed by id, the object kept to check identity).
_METRIC_COLUMNS: dict[int, tuple[PipelineConfig, tuple[ColumnElement[Any], ...]]] = {}


def _metric_columns() -> tuple[ColumnElement[Any], ...]:
    """The aggregate columns of `deal_metrics`, in its row order after the group label: built once
    per pipeline configuration and reused (SQLAlchemy expressions are immutable). Building them on
    every call, a CASE over every stage among them, was about 4% of a loaded worker's GIL time under
    py-spy."""
    pipeline = load_pipeline()
    hit = _METRIC_COLUMNS.get(id(pipeline))
    if hit is not None and hit[0] is pipeline:
        return hit[1]
    won = Deal.stage == pipeline.won_key
    lost = Deal.stage.in_(pipeline.lost_keys)
    is_open = Deal.stage.in_(pipeline.open_keys)
    open_amount = func.coalesce(Deal.value, Product.list_price, 0)
    weighted = open_amount * _probability_case(pipeline)
    columns = (
        func.count().label("deals"),
        func.count().filter(is_open).label("open"),
        func.count().filter(won).label("won"),
        func.count().filter(lost).label("lost"),
        func.coalesce(func.sum(Deal.value).filter(won), 0).label("won_value"),
        func.avg(Deal.value).filter(won).label("avg_won_value"),
        func.max(Deal.value).filter(won).label("max_won_value"),
        func.avg(Deal.close_date - Deal.engage_date).filter(won).label("avg_cycle_days"),
        func.coalesce(func.sum(open_amount).filter(is_open), 0).label("open_pipeline_value"),
        func.coalesce(func.sum(weighted).filter(is_open), 0).label("weighted"),
    )
    _METRIC_COLUMNS[id(pipeline)] = (pipeline, columns)
    return columns


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def _win_rate(won: int, lost: int) -> float | None:
    return None if won + lost == 0 else 100.0 * won / (won + lost)


def deal_metrics(
    session: Session,
    filter: DealFilter | None = None,
    group_by: GroupBy | None = None,
    *,
    order_by: Metric | None = None,
    descending: bool = True,
    limit: int | None = None,
) -> list[MetricsRow]:
    """Deal metrics of the deals matching `filter`, in one row or one row per group.

    Returns `MetricsRow`s (see its fields), each computed over the group's deals:
    - deals: count; open / won / lost: counts by status (config/pipeline.yaml);
    - win_rate: 100 * won / (won + lost) in percent, full precision, None without closed deals;
    - won_value: sum of value of won deals (revenue, USD); avg_won_value / max_won_value: mean /
      largest value of won deals (USD, None without won deals);
    - avg_cycle_days: mean of (close_date - engage_date) in days over won deals with both dates;
    - open_pipeline_value: sum over open deals of value, or the product's list price when the deal
      has no value (0 when neither); weighted_forecast: the same amounts x stage probability.

    `group_by` None gives exactly one row (group None), even when nothing matches (all zeros).
    Otherwise one row per distinct label, with NULL labels as group None (e.g. deals without an
    account); months are "YYYY-MM". Rows come by label (stages in pipeline order, None last)
    unless `order_by` names a metric: sorted by it (`descending` by default, None values last),
    ties by label. `limit` keeps the first rows. Raises Invalid(field) from the filter, and
    Invalid("group_by") / Invalid("order_by") for unknown names.
    """
    if group_by is not None and group_by not in _GROUP_COLUMNS:
        raise Invalid("group_by", f"must be one of {', '.join(GROUP_BYS)}")
    if order_by is not None and order_by not in METRICS:
        raise Invalid("order_by", f"must be one of {', '.join(METRICS)}")
    if limit is not None and limit < 1:
        raise Invalid("limit", "must be 1 or more")
    pipeline = load_pipeline()
    label = _GROUP_COLUMNS[group_by] if group_by else literal(None)
    stmt = deal_select(label.label("grp"), *_metric_columns()).where(
        *deal_conditions(session, filter or DealFilter())
    )
    if group_by:
        stmt = stmt.group_by(label)
    rows = [
        MetricsRow(
            group=None if r.grp is None else str(r.grp),
            deals=r.deals,
            open=r.open,
            won=r.won,
            lost=r.lost,
            win_rate=_win_rate(r.won, r.lost),
            won_value=float(r.won_value),
            avg_won_value=_f(r.avg_won_value),
            max_won_value=_f(r.max_won_value),
            avg_cycle_days=_f(r.avg_cycle_days),
            open_pipeline_value=float(r.open_pipeline_value),
            weighted_forecast=float(r.weighted),
        )
        for r in session.execute(stmt)
    ]
    if group_by == "stage":
        order = {s.key: i for i, s in enumerate(pipeline.stages)}
        rows.sort(key=lambda m: order.get(m.group or "", len(order)))
    else:
        rows.sort(key=lambda m: (m.group is None, (m.group or "").lower()))
    if order_by is not None:
        # Stable sorts: by label first (above), then by the metric with Nones last.
        present = [m for m in rows if getattr(m, order_by) is not None]
        absent = [m for m in rows if getattr(m, order_by) is None]
        present.sort(key=lambda m: getattr(m, order_by), reverse=descending)
        rows = present + absent
    return rows[:limit] if limit is not None else rows


def pipeline_summary(
    session: Session,
    rep: int | str | None = None,
    office: str | None = None,
    product: int | str | None = None,
    account: int | str | None = None,
    *,
    filter: DealFilter | None = None,
) -> PipelineSummary:
    """Totals of the pipeline, optionally narrowed to a rep, regional office, product or account
    (or any `DealFilter`; the keyword arguments are merged into it).

    total_deals, open, won, lost: counts; win_rate: 100 * won / (won + lost) rounded to one
    decimal (percent; None when nothing is closed); won_value: revenue of won deals (USD).
    by_stage: every configured stage in pipeline order with its deal count and value (USD) = sum of
    deal values, where an open deal without a value counts at its product's list price (0 when it
    has no product) so early stages are not shown as empty; lost deals count 0 (their close value).
    """
    base = filter or DealFilter()
    extra = {"rep": rep, "office": office, "product": product, "account": account}
    f = base.model_copy(update={k: v for k, v in extra.items() if v is not None})
    pipeline = load_pipeline()
    amount = case(
        (Deal.stage.in_(pipeline.open_keys), func.coalesce(Deal.value, Product.list_price, 0)),
        else_=func.coalesce(Deal.value, 0),
    )
    value = func.coalesce(func.sum(amount), 0)
    stmt = (
        deal_select(Deal.stage, func.count().label("deals"), value.label("value"))
        .where(*deal_conditions(session, f))
        .group_by(Deal.stage)
    )
    found = {r.stage: (int(r.deals), float(r.value)) for r in session.execute(stmt)}
    stages = [
        StageSummary(
            stage=s.key, name=s.name, deals=found.get(s.key, (0, 0.0))[0], value=found.get(s.key, (0, 0.0))[1]
        )
        for s in pipeline.stages
    ]
    by_key = {s.stage: s for s in stages}
    won = by_key[pipeline.won_key]
    lost = sum(by_key[k].deals for k in pipeline.lost_keys)
    rate = _win_rate(won.deals, lost)
    return PipelineSummary(
        total_deals=sum(s.deals for s in stages),
        open=sum(by_key[k].deals for k in pipeline.open_keys),
        won=won.deals,
        lost=lost,
        win_rate=None if rate is None else round(rate, 1),
        won_value=won.value,
        by_stage=stages,
    )


# --- accounts -------------------------------------------------------------------------------


def accounts_by_sector(session: Session, sector: str | None = None) -> list[SectorCount]:
    """Number of accounts per sector, sorted by sector (accounts without one last, as None).
    With `sector`, only that sector (case-insensitive), count 0 when no account has it."""
    stmt = select(Account.sector, func.count()).group_by(Account.sector)
    if sector is not None:
        stmt = stmt.where(func.lower(Account.sector) == sector.strip().lower())
    rows = [SectorCount(sector=s, accounts=n) for s, n in session.execute(stmt)]
    if sector is not None and not rows:
        return [SectorCount(sector=sector.strip(), accounts=0)]
    return sorted(rows, key=lambda r: (r.sector is None, (r.sector or "").lower()))


def subsidiaries(
    session: Session, account: int | str, *, rep_ids: frozenset[int] | None = None
) -> list[AccountBrief]:
    """Direct subsidiaries of `account` (id or name), sorted by name; with `rep_ids` (the caller's
    `read_rep_ids`), only those the caller may read (`crm.access.accounts_condition`). NotFound if
    no such account."""
    parent = get_by_ref(session, Account, account)
    stmt = select(Account).where(Account.parent_account_id == parent.id)
    visible = accounts_condition(rep_ids)
    if visible is not None:
        stmt = stmt.where(visible)
    rows = session.scalars(stmt.order_by(func.lower(Account.name), Account.id)).all()
    return [AccountBrief.model_validate(a) for a in rows]


def parent_account(
    session: Session, account: int | str, *, rep_ids: frozenset[int] | None = None
) -> AccountBrief | None:
    """The parent of `account` (id or name), None for a top-level account, and with `rep_ids`
    also None when the parent is outside the caller's reading. NotFound if unknown."""
    child = get_by_ref(session, Account, account)
    if child.parent_account_id is None:
        return None
    if rep_ids is not None and not account_readable(session, child.parent_account_id, rep_ids):
        return None
    return AccountBrief.model_validate(session.get(Account, child.parent_account_id))


def account_profile(
    session: Session, account: int | str, *, rep_ids: frozenset[int] | None = None
) -> AccountProfile:
    """An account (id or name) with parent, direct subsidiaries, number of contacts and its deal
    metrics (`deal_metrics` over its deals). With `rep_ids` (the caller's `read_rep_ids`; None:
    all) it is the caller's view: NotFound when the account is outside their reading, the parent
    and subsidiaries they may read, the metrics of those reps' deals. NotFound if no such
    account."""
    row = get_by_ref(session, Account, account)
    if rep_ids is not None and not account_readable(session, row.id, rep_ids):
        raise NotFound("account", account)
    n_contacts = session.scalar(select(func.count()).where(Contact.account_id == row.id)) or 0
    # the parent row, loaded once: its name for the account's view, and held here so that
    # `parent_account` finds it in the session's identity map instead of reading it again
    parent_row = session.get(Account, row.parent_account_id) if row.parent_account_id is not None else None
    return AccountProfile(
        account=account_out(row, parent_row.name if parent_row is not None else None),
        parent=parent_account(session, row.id, rep_ids=rep_ids),
        subsidiaries=subsidiaries(session, row.id, rep_ids=rep_ids),
        contacts=n_contacts,
        metrics=deal_metrics(session, DealFilter(account=row.id, rep_ids=rep_ids))[0],
    )


def list_sectors(session: Session) -> list[str]:
    """Distinct account sectors, sorted."""
    return sorted(s for s in session.scalars(select(Account.sector).distinct()) if s is not None)


# --- reps -----------------------------------------------------------------------------------


def rep_profile(session: Session, rep: int | str) -> RepProfile:
    """A sales rep (id or name) with manager, regional office, teammates (other reps with the same
    manager, sorted) and deal metrics. NotFound if no such rep."""
    row = get_by_ref(session, SalesRep, rep)
    mates: list[str] = []
    if row.manager is not None:
        mates = list(
            session.scalars(
                select(SalesRep.name)
                .where(SalesRep.manager == row.manager, SalesRep.id != row.id)
                .order_by(func.lower(SalesRep.name), SalesRep.id)
            )
        )
    return RepProfile(
        rep=get_rep(session, row.id),
        teammates=mates,
        metrics=deal_metrics(session, DealFilter(rep=row.id))[0],
    )


def team_of(session: Session, manager: str) -> list[RepBrief]:
    """The reps whose manager is `manager` (case-insensitive), sorted by name.
    Inconsistent("manager") when no rep has that manager."""
    same = func.lower(SalesRep.manager) == manager.strip().lower()
    rows = session.scalars(
        select(SalesRep).where(same).order_by(func.lower(SalesRep.name), SalesRep.id)
    ).all()
    if not rows:
        raise Inconsistent("manager", f"no manager named {manager!r}")
    return [RepBrief.model_validate(r, from_attributes=True) for r in rows]


def list_managers(session: Session) -> list[str]:
    """Distinct managers of the sales reps, sorted."""
    return sorted(m for m in session.scalars(select(SalesRep.manager).distinct()) if m is not None)


def list_offices(session: Session) -> list[str]:
    """Distinct regional offices of the sales reps, sorted."""
    return sorted(o for o in session.scalars(select(SalesRep.regional_office).distinct()) if o is not None)


def list_series(session: Session) -> list[str]:
    """Distinct product series, sorted."""
    return sorted(s for s in session.scalars(select(Product.series).distinct()) if s is not None)


# --- time -----------------------------------------------------------------------------------

#: `changed_by` of stage-history rows written by `crm.importer`: their time is the import's, not
#: the deal's, so time-in-stage falls back to the deal's own dates for them.
IMPORT_ACTOR = "import"


def reference_date(session: Session) -> dt.date:
    """ "Today" for questions about the data: the latest engage_date, close_date or (non-import)
    stage change in the CRM, never after the real today; the real today when the CRM is empty.
    For the Maven export this is 2017-12-31."""
    today = dt.date.today()
    # one round trip: GREATEST ignores NULLs and is NULL only when all three are
    latest = session.scalar(
        select(
            func.greatest(
                select(func.max(Deal.engage_date)).scalar_subquery(),
                select(func.max(Deal.close_date)).scalar_subquery(),
                select(func.max(cast(DealStageHistory.changed_at, Date)))
                .where(DealStageHistory.changed_by.is_distinct_from(IMPORT_ACTOR))
                .scalar_subquery(),
            )
        )
    )
    return min(latest, today) if latest is not None else today


def stuck_deals(
    session: Session,
    stage: str,
    older_than_days: int,
    as_of: dt.date | None = None,
    *,
    filter: DealFilter | None = None,
    limit: int = 100,
) -> list[StuckDeal]:
    """Open deals sitting in `stage` (key or name) for more than `older_than_days` days at `as_of`
    (default `reference_date`), oldest first (at most `limit`).

    In stage since = the date of the latest stage-history row into the deal's current stage not
    written by an import; else the deal's engage_date; else the date the deal was created.
    days_in_stage = as_of - since, in days. Raises Inconsistent("stage") for an unknown or closed
    stage and Invalid("older_than_days") for a negative number. A cut-off before the first day of
    the calendar (year 1) leaves no deal old enough: an empty list.
    """
    target = load_pipeline().resolve(stage)
    if target is None:
        raise Inconsistent("stage", f"unknown stage {stage!r}")
    if target.closed:
        raise Inconsistent("stage", f"{target.name} is a closed stage; deals there cannot be stuck")
    if older_than_days < 0:
        raise Invalid("older_than_days", "must be 0 or more")
    as_of = as_of or reference_date(session)
    try:
        cutoff = as_of - dt.timedelta(days=older_than_days)
    except OverflowError:
        return []
    moved = (
        select(func.max(cast(DealStageHistory.changed_at, Date)))
        .where(
            DealStageHistory.deal_id == Deal.id,
            DealStageHistory.to_stage == Deal.stage,
            DealStageHistory.changed_by.is_distinct_from(IMPORT_ACTOR),
        )
        .scalar_subquery()
    )
    since = func.coalesce(moved, Deal.engage_date, cast(Deal.created_at, Date))
    conds = [
        *deal_conditions(session, filter or DealFilter()),
        Deal.stage == target.key,
        status_condition("open"),
        since < cutoff,
    ]
    ids_since = session.execute(
        deal_select(Deal.id, since.label("since")).where(*conds).order_by(since, Deal.id).limit(limit)
    ).all()
    if not ids_since:
        return []
    by_id = {d.id: d for d in deal_outs(session, [Deal.id.in_([r.id for r in ids_since])], [Deal.id])}
    return [
        StuckDeal(deal=by_id[r.id], in_stage_since=r.since, days_in_stage=(as_of - r.since).days)
        for r in ids_since
    ]
