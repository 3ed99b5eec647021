"""A question over the CRM as a structured query: the closed lists of the semantic layer
(`crm.semantic.layer`), combined in one shape a planner fills and `crm.semantic.sql` runs.

A query is about rows of one `subject` entity (accounts, products, reps or deals):

- `where`: conditions on attributes. On the subject's own attributes they choose the rows; on
  another entity's (a deal's stage, the product of the deals...) they choose which deals count
  for each row, and a row needs at least one such deal unless `having` says otherwise
  ("accounts that bought GTX Pro": subject account, where product.name = GTX Pro).
- `measure`: what comes back:
  - "list": the rows' names (with `field` shown when given);
  - "count": how many rows; "count_distinct": how many distinct values of `field`;
  - "sum" / "avg" / "min" / "max": of the numeric `field` over the rows;
  - "metric": the deal metric `metric` (win rate, revenue...) over the rows' deals: one figure,
    or, with `order_by`, one per row (a ranking of accounts, reps, products);
  - "share": the percentage of the rows that also meet `share_where`.
- `having`: conditions on a deal metric of each row ("with no won deal": won = 0).
- `group_by`: one result per value of an attribute (per sector, office, quarter...).
- `order_by` + `limit`: rankings ("top 3", "lowest"); `by` is an attribute, a metric, or
  "value" (the measure itself).

The model fills this shape as JSON constrained to it (every name from a closed list), so it can
only ask what the layer can answer; `validate_query` rejects the combinations that have no
meaning, with a reason a planner can act on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crm.semantic.layer import FIELDS, NAME_FIELD, Entity, FieldName, MetricName

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "contains", "in", "is_empty", "not_empty"]
Measure = Literal["list", "count", "count_distinct", "sum", "avg", "min", "max", "metric", "share"]
Scalar = str | float | int

#: Measures that need a numeric `field`.
NUMERIC_MEASURES = ("sum", "avg", "min", "max")


class Condition(BaseModel):
    """`field op value`: text compares case-insensitively ("contains": a substring; "in": one of
    a list), numbers and dates (ISO "YYYY-MM-DD") by order; "is_empty" / "not_empty" take no
    value."""

    model_config = ConfigDict(extra="forbid")

    field: FieldName
    op: Op = "eq"
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits(self) -> Condition:
        if self.op in ("is_empty", "not_empty"):
            return self
        if self.value is None or self.value == "":
            # "eq nothing" / "ne nothing" can only mean empty / not empty
            if self.op in ("eq", "ne"):
                self.op = "is_empty" if self.op == "eq" else "not_empty"
                self.value = None
                return self
            raise ValueError(f"{self.field} {self.op}: a value is needed")
        if self.op == "in" and not isinstance(self.value, list):
            self.value = [self.value]
        if self.op != "in" and isinstance(self.value, list):
            raise ValueError(f"{self.field} {self.op}: one value, not a list (use op 'in')")
        kind = FIELDS[self.field].kind
        if self.op in ("gt", "gte", "lt", "lte") and kind == "text":
            raise ValueError(f"{self.field} is text: compare it with eq, ne, contains or in")
        if kind == "number":
            values = self.value if isinstance(self.value, list) else [self.value]
            for v in values:
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise ValueError(f"{self.field} is a number, not {v!r}") from None
        return self


class MetricCondition(BaseModel):
    """`metric op value` over one row's deals (e.g. won eq 0, win_rate gt 60)."""

    model_config = ConfigDict(extra="forbid")

    metric: MetricName
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte"]
    value: float


class Order(BaseModel):
    """Sort by an attribute, a deal metric, or "value" (the measure), highest first by default."""

    model_config = ConfigDict(extra="forbid")

    by: FieldName | MetricName | Literal["value"] = "value"
    direction: Literal["desc", "asc"] = "desc"


class SemanticQuery(BaseModel):
    """One question over the CRM (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    subject: Entity
    where: list[Condition] = Field(default_factory=list)
    measure: Measure = "list"
    field: FieldName | None = None
    metric: MetricName | None = None
    share_where: list[Condition] = Field(default_factory=list)
    having: list[MetricCondition] = Field(default_factory=list)
    group_by: FieldName | None = None
    order_by: Order | None = None
    limit: int | None = Field(None, ge=1, le=100)

    @model_validator(mode="after")
    def _coherent(self) -> SemanticQuery:
        validate_query(self)
        return self


def own(subject: Entity, field: str) -> bool:
    """Is `field` an attribute of the subject's own rows? (an account's parent is)."""
    return FIELDS[field].entity == subject


def validate_query(q: SemanticQuery) -> None:
    """Raises ValueError (its message names the part at fault and what would fit) when the
    parts of `q` do not make one question."""
    if q.measure == "metric" and q.metric is None:
        raise ValueError("measure 'metric' needs `metric` (e.g. win_rate, won_value)")
    if q.measure in NUMERIC_MEASURES and (q.field is None or FIELDS[q.field].kind != "number"):
        raise ValueError(f"measure {q.measure!r} needs a numeric `field` (e.g. account.employees)")
    if q.measure == "count_distinct" and q.field is None:
        raise ValueError("measure 'count_distinct' needs `field`")
    if q.measure == "share" and not q.share_where:
        raise ValueError("measure 'share' needs `share_where` (the part whose share is asked)")
    if q.subject != "deal":
        for name in (q.field, q.group_by):
            if name is not None and not own(q.subject, name) and q.measure != "metric":
                raise ValueError(
                    f"{name} is not an attribute of {q.subject}: ask with subject 'deal' instead"
                )
        for c in q.share_where:
            if not own(q.subject, c.field):
                raise ValueError(f"share_where on {c.field}: only {q.subject} attributes")
    ordered_by_metric = q.order_by is not None and q.order_by.by not in ("value", *FIELDS)
    if ordered_by_metric and q.measure != "metric" and q.subject == "deal" and q.group_by is None:
        raise ValueError("a deal list is ordered by a deal attribute (e.g. deal.value)")


__all__ = [
    "NAME_FIELD",
    "NUMERIC_MEASURES",
    "Condition",
    "Measure",
    "MetricCondition",
    "Op",
    "Order",
    "Scalar",
    "SemanticQuery",
    "own",
    "validate_query",
]
