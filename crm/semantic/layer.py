"""The semantic layer: what the CRM holds, described once, in the words questions use.

Four entities (`account`, `product`, `rep`, `deal`), each with its attributes (`FIELDS`, named
"entity.attribute"), and the deal metrics (`METRICS`). A question is answered by a
`crm.semantic.query.SemanticQuery` built from these closed lists only: the model (or a rule)
chooses names from them, `crm.semantic.sql` turns the choice into SQL. Nothing outside this
module knows a column name, so a new attribute is added here and every planner can use it.

Every attribute knows the SQL expression that reads it, given the query's tables: a deal reaches
its account, product and rep (and the account's parent) through outer joins, so
"deals of accounts in the retail sector" is a condition on `account.sector` of a deal query.

Metric definitions are those of `crm.analytics.deal_metrics` (the figures the rest of the product
quotes): win rate = 100 x won / (won + lost); revenue = the value of won deals; cycle = close_date
- engage_date of won deals, in days; open pipeline value = the value of open deals, else their
product's list price.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from sqlalchemy import ColumnElement, Numeric, case, cast, extract, func
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import KeyedColumnElement

from config.files import load_pipeline
from crm.models import Account, Deal, Product, SalesRep

Entity = Literal["account", "product", "rep", "deal"]
ENTITIES: tuple[Entity, ...] = ("account", "product", "rep", "deal")

FieldKind = Literal["text", "number", "date", "period"]

FieldName = Literal[
    "account.name",
    "account.sector",
    "account.employees",
    "account.revenue_musd",
    "account.year_established",
    "account.location",
    "account.parent",
    "product.name",
    "product.series",
    "product.list_price",
    "rep.name",
    "rep.manager",
    "rep.office",
    "deal.id",
    "deal.stage",
    "deal.status",
    "deal.value",
    "deal.engage_date",
    "deal.close_date",
    "deal.cycle_days",
    "deal.engage_month",
    "deal.close_month",
    "deal.engage_quarter",
    "deal.close_quarter",
    "deal.engage_year",
    "deal.close_year",
]

MetricName = Literal[
    "deals",
    "open",
    "won",
    "lost",
    "closed",
    "win_rate",
    "won_value",
    "avg_won_value",
    "max_won_value",
    "min_won_value",
    "avg_cycle_days",
    "open_pipeline_value",
]

#: The account a subsidiary belongs to: a second alias of `accounts`.
ParentAccount = aliased(Account, name="parent_account")


@dataclass(frozen=True)
class Tables:
    """The tables one query reads, as SQL objects (the ORM classes, or aliases when a query
    needs two copies of one table)."""

    account: Any = Account
    parent: Any = ParentAccount
    product: Any = Product
    rep: Any = SalesRep
    deal: Any = Deal


@dataclass(frozen=True)
class FieldSpec:
    """One attribute: its entity, kind ("text", "number", "date", or "period" for a time bucket
    such as "2017-Q3"), unit (for replies: "USD", "million USD", "days", "year"), what it means
    (for the planner's prompt), and `column(tables)`, the SQL expression that reads it."""

    name: FieldName
    entity: Entity
    kind: FieldKind
    description: str
    column: Callable[[Tables], ColumnElement[Any]]
    unit: str | None = None

    @property
    def attribute(self) -> str:
        """The attribute's own name ("sector" of "account.sector")."""
        return self.name.split(".", 1)[1]


def _quarter(col: KeyedColumnElement[Any]) -> ColumnElement[Any]:
    return func.to_char(col, 'YYYY-"Q"Q')


_SPECS: list[FieldSpec] = [
    FieldSpec("account.name", "account", "text", "the account's (company's) name", lambda t: t.account.name),
    FieldSpec("account.sector", "account", "text", "industry sector", lambda t: t.account.sector),
    FieldSpec("account.employees", "account", "number", "number of employees", lambda t: t.account.employees),
    FieldSpec(
        "account.revenue_musd",
        "account",
        "number",
        "the account's own annual revenue, millions of USD",
        lambda t: t.account.revenue_musd,
        unit="million USD",
    ),
    FieldSpec(
        "account.year_established",
        "account",
        "number",
        "year the company was founded",
        lambda t: t.account.year_established,
        unit="year",
    ),
    FieldSpec(
        "account.location",
        "account",
        "text",
        "country of the account's office",
        lambda t: t.account.office_location,
    ),
    FieldSpec("account.parent", "account", "text", "name of the parent company", lambda t: t.parent.name),
    FieldSpec("product.name", "product", "text", "product name", lambda t: t.product.name),
    FieldSpec("product.series", "product", "text", "product series (family)", lambda t: t.product.series),
    FieldSpec(
        "product.list_price",
        "product",
        "number",
        "list price, USD",
        lambda t: t.product.list_price,
        unit="USD",
    ),
    FieldSpec("rep.name", "rep", "text", "sales rep (agent) name", lambda t: t.rep.name),
    FieldSpec("rep.manager", "rep", "text", "the rep's manager", lambda t: t.rep.manager),
    FieldSpec("rep.office", "rep", "text", "the rep's regional office", lambda t: t.rep.regional_office),
    FieldSpec("deal.id", "deal", "text", "opportunity id", lambda t: t.deal.external_id),
    FieldSpec("deal.stage", "deal", "text", "pipeline stage key", lambda t: t.deal.stage),
    FieldSpec("deal.status", "deal", "text", "open, won or lost", lambda t: _status(t)),
    FieldSpec("deal.value", "deal", "number", "deal value, USD", lambda t: t.deal.value, unit="USD"),
    FieldSpec("deal.engage_date", "deal", "date", "date engagement started", lambda t: t.deal.engage_date),
    FieldSpec("deal.close_date", "deal", "date", "date the deal closed", lambda t: t.deal.close_date),
    FieldSpec(
        "deal.cycle_days",
        "deal",
        "number",
        "days from engagement to close",
        lambda t: cast(t.deal.close_date - t.deal.engage_date, Numeric),
        unit="days",
    ),
    FieldSpec(
        "deal.engage_month",
        "deal",
        "period",
        "month engaged",
        lambda t: func.to_char(t.deal.engage_date, "YYYY-MM"),
    ),
    FieldSpec(
        "deal.close_month",
        "deal",
        "period",
        "month closed",
        lambda t: func.to_char(t.deal.close_date, "YYYY-MM"),
    ),
    FieldSpec(
        "deal.engage_quarter", "deal", "period", "quarter engaged", lambda t: _quarter(t.deal.engage_date)
    ),
    FieldSpec(
        "deal.close_quarter", "deal", "period", "quarter closed", lambda t: _quarter(t.deal.close_date)
    ),
    FieldSpec(
        "deal.engage_year",
        "deal",
        "number",
        "year engaged",
        lambda t: cast(extract("year", t.deal.engage_date), Numeric),
        unit="year",
    ),
    FieldSpec(
        "deal.close_year",
        "deal",
        "number",
        "year closed",
        lambda t: cast(extract("year", t.deal.close_date), Numeric),
        unit="year",
    ),
]

FIELDS: dict[str, FieldSpec] = {f.name: f for f in _SPECS}
FIELD_NAMES: tuple[str, ...] = FieldName.__args__  # type: ignore[attr-defined]
assert set(FIELD_NAMES) == set(FIELDS), "FieldName and the layer's fields must name the same attributes"

#: The attribute that names one record of each entity (what a list shows).
NAME_FIELD: dict[Entity, FieldName] = {
    "account": "account.name",
    "product": "product.name",
    "rep": "rep.name",
    "deal": "deal.id",
}


@dataclass(frozen=True)
class MetricSpec:
    """A deal metric: what it means, its unit, and whether it counts deals (an integer)."""

    name: MetricName
    description: str
    unit: str | None = None
    counts: bool = False


_METRIC_SPECS: list[MetricSpec] = [
    MetricSpec("deals", "number of deals", counts=True),
    MetricSpec("open", "number of open deals (prospecting or engaging)", counts=True),
    MetricSpec("won", "number of won deals", counts=True),
    MetricSpec("lost", "number of lost deals", counts=True),
    MetricSpec("closed", "number of closed deals (won + lost)", counts=True),
    MetricSpec("win_rate", "won / (won + lost), percent", unit="%"),
    MetricSpec("won_value", "revenue: total value of won deals, USD", unit="USD"),
    MetricSpec("avg_won_value", "average value of a won deal, USD", unit="USD"),
    MetricSpec("max_won_value", "largest won deal, USD", unit="USD"),
    MetricSpec("min_won_value", "smallest won deal, USD", unit="USD"),
    MetricSpec("avg_cycle_days", "average days from engagement to close of won deals", unit="days"),
    MetricSpec("open_pipeline_value", "value of the open deals (list price when no value), USD", unit="USD"),
]
METRICS: dict[str, MetricSpec] = {m.name: m for m in _METRIC_SPECS}
assert set(MetricName.__args__) == set(METRICS), "MetricName and METRICS must agree"  # type: ignore[attr-defined]


def _status(t: Tables) -> ColumnElement[Any]:
    pipeline = load_pipeline()
    return case(
        (t.deal.stage == pipeline.won_key, "won"),
        (t.deal.stage.in_(pipeline.lost_keys), "lost"),
        else_="open",
    )


@cache
def describe() -> str:
    """The layer as the planner's prompt shows it: one line per attribute and metric (built once:
    the layer does not change while the process runs)."""
    lines = ["Attributes:"]
    lines += [f"- {f.name}: {f.description}" for f in _SPECS]
    lines.append("Deal metrics:")
    lines += [f"- {m.name}: {m.description}" for m in _METRIC_SPECS]
    return "\n".join(lines)


__all__ = [
    "ENTITIES",
    "FIELDS",
    "FIELD_NAMES",
    "METRICS",
    "NAME_FIELD",
    "Entity",
    "FieldKind",
    "FieldName",
    "FieldSpec",
    "MetricName",
    "MetricSpec",
    "ParentAccount",
    "Tables",
    "describe",
]
