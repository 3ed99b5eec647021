"""A `SemanticQuery` as SQL, run: the deterministic half of answering a question (the planner
chooses names from closed lists; every figure comes from here).

`run_query(session, query, rep_ids=...)` returns a `SemanticResult`: rows of (label, value),
where label is a record's name or a group's value and value the measure. The shapes:

- subject "deal": one SELECT over deals outer-joined to their account (and its parent), product
  and rep, filtered by every condition; the measure aggregates the deals (per group with
  `group_by`); a list names deals by opportunity id.
- subject "account" / "product" / "rep": the subject's rows, each with its deals (only those
  meeting the conditions on other entities) outer-joined and its deal metrics aggregated; own
  conditions filter the rows, `having` filters them by their metrics, and the measure is taken
  over those rows. A metric without `order_by` is one figure over all the rows' deals (computed
  as a deal query restricted to those rows), not a figure per row.

Scope: with `rep_ids` (the caller's `read_rep_ids`), only those reps' deals count and only the
accounts the caller reads are rows (`crm.access`); products and the team are everyone's.
Raises `crm.errors.Invalid("query", reason)` for a query that cannot run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, and_, distinct, func, literal, or_, select
from sqlalchemy.orm import Session

from config.files import load_pipeline
from crm.access import accounts_condition
from crm.errors import Invalid
from crm.filters import deal_select
from crm.models import Account, Deal, Product, SalesRep
from crm.semantic.layer import FIELDS, METRICS, NAME_FIELD, ParentAccount, Tables
from crm.semantic.query import Condition, MetricCondition, SemanticQuery, own

#: The most rows a list or ranking returns when the query gives no limit.
DEFAULT_LIMIT = 50

_TABLES = Tables()
_SUBJECT_TABLE: dict[str, Any] = {"account": Account, "product": Product, "rep": SalesRep}
_DEAL_KEY: dict[str, Any] = {"account": Deal.account_id, "product": Deal.product_id, "rep": Deal.rep_id}

Value = float | int | str | None


class ResultRow(BaseModel):
    """One row of a result: `label` (a record's name, a group's value, None for a single
    figure), `value` (the measure: a number, or the shown field of a list), `extra` (other
    figures of the row, e.g. the metric a ranking sorted by)."""

    label: str | None = None
    value: Value = None
    extra: dict[str, Value] = Field(default_factory=dict)


class SemanticResult(BaseModel):
    """A query's answer: its rows (at most the limit) and `total`, the rows before the limit."""

    query: SemanticQuery
    rows: list[ResultRow]
    total: int


# --- pieces ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DealCols:
    """The deal columns the metrics read: of `deals` itself or of a subquery of deals."""

    id: Any
    stage: Any
    value: Any
    engage_date: Any
    close_date: Any
    amount: Any  # value, else the product's list price (open pipeline value)


def _deal_from(*columns: Any) -> Select[Any]:
    """`crm.filters.deal_select` (deals with their account, product and rep) and the account's
    parent."""
    return deal_select(*columns).outerjoin(ParentAccount, Account.parent_account_id == ParentAccount.id)


def _plain(value: Any) -> Value:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, int | float | str):
        return value
    return str(value)


def _scalar(kind: str, value: Any) -> Any:
    if kind == "number":
        return Decimal(str(value))
    if kind == "date":
        try:
            return dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise Invalid("query", f"{value!r} is not a date (YYYY-MM-DD)") from None
    return str(value).strip()


def condition_sql(c: Condition) -> ColumnElement[bool]:
    """The SQL of one condition over the query's tables (see `Condition`)."""
    spec = FIELDS[c.field]
    col = spec.column(_TABLES)
    if c.op == "is_empty":
        return col.is_(None)
    if c.op == "not_empty":
        return col.is_not(None)
    values = [_scalar(spec.kind, v) for v in (c.value if isinstance(c.value, list) else [c.value])]
    text = spec.kind in ("text", "period")
    if c.op == "contains":
        return or_(*(col.icontains(str(v), autoescape=True) for v in values))
    if text:
        col = func.lower(col)
        values = [str(v).lower() for v in values]
    first = values[0]
    out: ColumnElement[bool]
    match c.op:
        case "eq":
            out = col == first
        case "ne":
            out = or_(col != first, col.is_(None))
        case "in":
            out = col.in_(values)
        case "gt":
            out = col > first
        case "gte":
            out = col >= first
        case "lt":
            out = col < first
        case "lte":
            out = col <= first
        case _:
            raise Invalid("query", f"unknown operator {c.op!r}")
    return out


def metric_sql(name: str, d: _DealCols) -> ColumnElement[Any]:
    """The SQL aggregate of deal metric `name` over the deal columns `d` (definitions: see
    `crm.semantic.layer`)."""
    pipeline = load_pipeline()
    won = d.stage == pipeline.won_key
    lost = d.stage.in_(pipeline.lost_keys)
    is_open = d.stage.in_(pipeline.open_keys)
    n_won = func.count(d.id).filter(won)
    n_lost = func.count(d.id).filter(lost)
    exprs: dict[str, ColumnElement[Any]] = {
        "deals": func.count(d.id),
        "open": func.count(d.id).filter(is_open),
        "won": n_won,
        "lost": n_lost,
        "closed": func.count(d.id).filter(or_(won, lost)),
        "win_rate": _percent(n_won, n_won + n_lost),
        "won_value": func.coalesce(func.sum(d.value).filter(won), 0),
        "avg_won_value": func.avg(d.value).filter(won),
        "max_won_value": func.max(d.value).filter(won),
        "min_won_value": func.min(d.value).filter(won),
        "avg_cycle_days": func.avg(d.close_date - d.engage_date).filter(won),
        "open_pipeline_value": func.coalesce(func.sum(d.amount).filter(is_open), 0),
    }
    if name not in exprs:
        raise Invalid("query", f"unknown metric {name!r}; one of {', '.join(METRICS)}")
    return exprs[name]


def _percent(part: ColumnElement[Any], whole: ColumnElement[Any]) -> ColumnElement[Any]:
    """100 x part / whole, NULL when whole is 0 (a win rate, a share)."""
    return literal(Decimal(100)) * part / func.nullif(whole, 0)


def _having_sql(h: MetricCondition, d: _DealCols) -> ColumnElement[bool]:
    m = metric_sql(h.metric, d)
    v = Decimal(str(h.value))
    ops = {"eq": m == v, "ne": m != v, "gt": m > v, "gte": m >= v, "lt": m < v, "lte": m <= v}
    return ops[h.op]


def _deal_cols() -> _DealCols:
    amount = func.coalesce(Deal.value, Product.list_price, 0)
    return _DealCols(Deal.id, Deal.stage, Deal.value, Deal.engage_date, Deal.close_date, amount)


def _deal_scope(rep_ids: frozenset[int] | None) -> list[ColumnElement[bool]]:
    return [] if rep_ids is None else [Deal.rep_id.in_(rep_ids)]


def _measure_sql(
    q: SemanticQuery, field_col: Any, d: _DealCols | None, count: ColumnElement[Any]
) -> ColumnElement[Any]:
    """The aggregate of the measure over the current rows (`count`: their count)."""
    if q.measure == "count":
        return count
    if q.measure == "count_distinct":
        return func.count(distinct(field_col))
    if q.measure in ("sum", "avg", "min", "max"):
        aggregate: ColumnElement[Any] = getattr(func, q.measure)(field_col)
        return aggregate
    if q.measure == "metric" and d is not None and q.metric is not None:
        return metric_sql(q.metric, d)
    raise Invalid("query", f"measure {q.measure!r} does not aggregate here")


def _ordered(rows: list[ResultRow], q: SemanticQuery) -> list[ResultRow]:
    """Rows sorted as `q.order_by` says (None values last), else by label."""
    by = q.order_by.by if q.order_by is not None else None
    desc = q.order_by is not None and q.order_by.direction == "desc"

    def key(r: ResultRow) -> Any:
        if by is None:
            v: Any = r.label
        elif by == "value":
            v = r.value
        else:
            v = r.extra.get(by, r.value)
        missing = v is None
        if isinstance(v, str):
            v = v.lower()
        return (missing, v)

    present = sorted((r for r in rows if key(r)[0] is False), key=key, reverse=desc)
    absent = [r for r in rows if key(r)[0] is True]
    return present + absent


def _limited(q: SemanticQuery, rows: list[ResultRow]) -> SemanticResult:
    limit = q.limit or DEFAULT_LIMIT
    return SemanticResult(query=q, rows=rows[:limit], total=len(rows))


# --- deals ----------------------------------------------------------------------------------


def _run_deals(
    session: Session, q: SemanticQuery, rep_ids: frozenset[int] | None, extra: list[ColumnElement[bool]]
) -> SemanticResult:
    d = _deal_cols()
    conds = [condition_sql(c) for c in q.where] + _deal_scope(rep_ids) + extra
    field_col = FIELDS[q.field].column(_TABLES) if q.field else None
    if q.measure == "list" and q.group_by is None:
        name = FIELDS[NAME_FIELD["deal"]].column(_TABLES)
        order_field = q.order_by.by if q.order_by is not None and q.order_by.by in FIELDS else None
        cols = [name.label("label")]
        if field_col is not None:
            cols.append(field_col.label("value"))
        if order_field is not None:
            cols.append(FIELDS[order_field].column(_TABLES).label("ord"))
        got = session.execute(_deal_from(*cols).where(*conds)).all()
        rows = [
            ResultRow(
                label=r.label,
                value=_plain(r.value) if field_col is not None else None,
                extra={order_field: _plain(r.ord)} if order_field is not None else {},
            )
            for r in got
        ]
        return _limited(q, _ordered(rows, q))
    if q.measure == "share":
        part = and_(*(condition_sql(c) for c in q.share_where))
        value: ColumnElement[Any] = _percent(func.count(Deal.id).filter(part), func.count(Deal.id))
    else:
        value = _measure_sql(q, field_col, d, func.count(Deal.id))
    ranked = (
        q.order_by is not None and q.order_by.by not in ("value", q.group_by) and q.order_by.by in METRICS
    )
    cols = [value.label("value")]
    if ranked and q.order_by is not None:
        cols.append(metric_sql(q.order_by.by, d).label("ord"))
    if q.group_by is None:
        got = session.execute(_deal_from(*cols).where(*conds)).one()
        return SemanticResult(query=q, rows=[ResultRow(value=_plain(got.value))], total=1)
    grp = FIELDS[q.group_by].column(_TABLES)
    stmt = _deal_from(grp.label("label"), *cols).where(*conds).group_by(grp)
    if q.having:
        stmt = stmt.having(and_(*(_having_sql(h, d) for h in q.having)))
    rows = [
        ResultRow(
            label=None if r.label is None else str(_plain(r.label)),
            value=_plain(r.value),
            extra={str(q.order_by.by): _plain(r.ord)} if ranked and q.order_by is not None else {},
        )
        for r in session.execute(stmt)
    ]
    return _limited(q, _ordered(rows, q))


# --- accounts, products, reps ---------------------------------------------------------------


def _rows_query(q: SemanticQuery, rep_ids: frozenset[int] | None, metrics: list[str]) -> Select[Any]:
    """One row per subject record: row_id, label (its name), `field`, `grp`, `in_share` and the
    deal metrics named, over its deals that meet the conditions on other entities."""
    subject = q.subject
    table = _SUBJECT_TABLE[subject]
    cross = [condition_sql(c) for c in q.where if not own(subject, c.field)]
    cols = _deal_cols()
    columns = {f.name: getattr(cols, f.name) for f in dataclasses.fields(cols)}  # not asdict: no copies
    deals = (
        _deal_from(_DEAL_KEY[subject].label("owner_id"), *(col.label(name) for name, col in columns.items()))
        .where(*cross, *_deal_scope(rep_ids))
        .subquery("d")
    )
    d = _DealCols(**{name: deals.c[name] for name in columns})
    name = FIELDS[NAME_FIELD[subject]].column(_TABLES)
    plain_cols: list[Any] = [table.id.label("row_id"), name.label("label")]
    if q.field is not None and own(subject, q.field):
        plain_cols.append(FIELDS[q.field].column(_TABLES).label("field"))
    if q.group_by is not None and own(subject, q.group_by):
        plain_cols.append(FIELDS[q.group_by].column(_TABLES).label("grp"))
    if q.order_by is not None and q.order_by.by in FIELDS and own(subject, q.order_by.by):
        plain_cols.append(FIELDS[q.order_by.by].column(_TABLES).label("ord"))
    if q.share_where:
        plain_cols.append(and_(*(condition_sql(c) for c in q.share_where)).label("in_share"))
    metric_cols = [metric_sql(m, d).label(f"m_{m}") for m in metrics]
    stmt = select(*plain_cols, *metric_cols).select_from(table)
    if subject == "account":
        stmt = stmt.outerjoin(ParentAccount, Account.parent_account_id == ParentAccount.id)
    own_conds = [condition_sql(c) for c in q.where if own(subject, c.field)]
    if subject == "account":
        visible = accounts_condition(rep_ids)
        if visible is not None:
            own_conds.append(visible)
    stmt = stmt.outerjoin(deals, deals.c.owner_id == table.id).where(*own_conds)
    stmt = stmt.group_by(*(c.element if hasattr(c, "element") else c for c in plain_cols))
    havings = [_having_sql(h, d) for h in q.having]
    if cross and not q.having:
        havings.append(func.count(d.id) > 0)  # "accounts that bought X": at least one such deal
    if havings:
        stmt = stmt.having(and_(*havings))
    return stmt


def _run_records(session: Session, q: SemanticQuery, rep_ids: frozenset[int] | None) -> SemanticResult:
    subject = q.subject
    if q.measure == "metric" and (q.order_by is None or q.group_by is not None):
        # one figure (or one per group) over all the rows' deals: a deal query restricted to the rows
        rows_sq = _rows_query(q.model_copy(update={"group_by": None}), rep_ids, []).subquery("rows")
        only = [_DEAL_KEY[subject].in_(select(rows_sq.c.row_id))]
        as_deals = q.model_copy(update={"subject": "deal", "having": []})
        return _run_deals(session, as_deals, rep_ids, only)
    metrics: list[str] = []
    if q.measure == "metric" and q.metric is not None:
        metrics.append(q.metric)
    if q.order_by is not None and q.order_by.by in METRICS and q.order_by.by not in metrics:
        metrics.append(q.order_by.by)
    rows_sq = _rows_query(q, rep_ids, metrics).subquery("rows")
    if q.measure in ("list", "metric") and q.group_by is None:
        got = session.execute(select(rows_sq)).mappings().all()
        rows = []
        for r in got:
            extra: dict[str, Value] = {m: _plain(r[f"m_{m}"]) for m in metrics}
            if "ord" in r:
                assert q.order_by is not None
                extra[str(q.order_by.by)] = _plain(r["ord"])
            if q.measure == "metric" and q.metric is not None:
                value = _plain(r[f"m_{q.metric}"])
            else:
                value = _plain(r["field"]) if "field" in r else None
            rows.append(ResultRow(label=r["label"], value=value, extra=extra))
        return _limited(q, _ordered(rows, q))
    field_col = rows_sq.c.field if q.field is not None and "field" in rows_sq.c else None
    if q.measure == "share":
        value_sql: ColumnElement[Any] = _percent(func.count().filter(rows_sq.c.in_share), func.count())
    else:
        value_sql = _measure_sql(q, field_col, None, func.count())
    if q.group_by is None:
        got_one = session.execute(select(value_sql.label("value")).select_from(rows_sq)).one()
        return SemanticResult(query=q, rows=[ResultRow(value=_plain(got_one.value))], total=1)
    stmt = select(rows_sq.c.grp.label("label"), value_sql.label("value")).group_by(rows_sq.c.grp)
    rows = [
        ResultRow(label=None if r.label is None else str(_plain(r.label)), value=_plain(r.value))
        for r in session.execute(stmt)
    ]
    return _limited(q, _ordered(rows, q))


def run_query(
    session: Session, query: SemanticQuery, *, rep_ids: frozenset[int] | None = None
) -> SemanticResult:
    """Run `query` (see the module docstring). Raises Invalid("query", reason)."""
    if query.subject == "deal":
        return _run_deals(session, query, rep_ids, [])
    return _run_records(session, query, rep_ids)


#: Text attributes whose values are a small closed set (snapped to the CRM's own values).
CATEGORICAL = (
    "account.sector",
    "account.location",
    "product.series",
    "rep.office",
    "rep.manager",
    "deal.stage",
)


def known_values(session: Session, field: str) -> list[str]:
    """The distinct non-empty values of a text attribute in the CRM, sorted."""
    col = FIELDS[field].column(_TABLES)
    stmt = _deal_from(col).distinct() if FIELDS[field].entity == "deal" else select(col).distinct()
    return sorted(str(v) for v in session.scalars(stmt) if v)


def _snap(value: str, known: list[str]) -> str:
    """`value` as the CRM writes it: itself when known (any case); else the longest known value
    that it contains as whole words, or that contains it ("GTX Pro" series -> "GTX",
    "telecom" -> "telecommunications"); else unchanged (it will match nothing)."""
    low = value.strip().lower()
    exact = [k for k in known if k.lower() == low]
    if exact:
        return exact[0]
    inside = [k for k in known if re.search(rf"\b{re.escape(k.lower())}\b", low)]
    around = [k for k in known if k.lower().startswith(low) and len(low) >= 3]
    found = inside or around
    return max(found, key=len) if found else value


def snap_values(session: Session, query: SemanticQuery) -> SemanticQuery:
    """`query` with the values of its conditions on categorical attributes (`CATEGORICAL`)
    written as the CRM writes them (see `_snap`): a planner's "GTX Pro series" or "Telecom"
    finds the CRM's "GTX" and "telecommunications"."""

    def snapped(conditions: list[Condition]) -> list[Condition]:
        out = []
        for c in conditions:
            if c.field in CATEGORICAL and c.op in ("eq", "ne", "in") and c.value is not None:
                known = known_values(session, c.field)
                if isinstance(c.value, list):
                    c = c.model_copy(update={"value": [_snap(str(v), known) for v in c.value]})
                else:
                    c = c.model_copy(update={"value": _snap(str(c.value), known)})
            out.append(c)
        return out

    return query.model_copy(update={"where": snapped(query.where), "share_where": snapped(query.share_where)})


__all__ = [
    "CATEGORICAL",
    "DEFAULT_LIMIT",
    "ResultRow",
    "SemanticResult",
    "condition_sql",
    "known_values",
    "metric_sql",
    "run_query",
    "snap_values",
]
