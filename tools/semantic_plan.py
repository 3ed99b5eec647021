"""What the planner chooses over the semantic layer, and the query it makes.

The planner model answers with a `SemanticPlan`: one query shape per measure (a list, a count,
an aggregate, a deal metric, a share), each with only the parts that measure uses, so JSON
constrained to it cannot carry a stray metric on a count or a ranking on a share (a 1.5B model
fills every field a schema offers). `SemanticPlan.choice()` flattens it into a `SemanticChoice`,
which `complete_query` completes with what the entity resolver found: each record the message
NAMES becomes a condition (an account `account.name`, a manager `rep.manager`, a period a date
range), so the model never copies a name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from contracts import Entities
from crm.semantic import Condition, MetricCondition, Order, SemanticQuery
from crm.semantic.layer import Entity, FieldName, MetricName
from crm.semantic.query import Measure, own
from tools.semantic_words import QuestionWords, read_question

__all__ = [
    "ENTITY_FIELDS",
    "SemanticChoice",
    "SemanticPlan",
    "complete_query",
]

Rank = Literal["none", "highest", "lowest"]
#: Deal metrics that count deals: "how many deals did we win" is such a metric, not a count of
#: records.
COUNTING_METRICS = ("deals", "open", "won", "lost", "closed")
DateField = Literal["engage", "close"]
Conditions = Annotated[
    list[Condition],
    Field(description="filters the question states in words (numbers, years, statuses); not the names"),
]
Having = Annotated[list[MetricCondition], Field(description="filters on each record's deal metrics")]


#: The attribute a resolved entity of each kind names (contacts are not part of the layer).
ENTITY_FIELDS: dict[str, FieldName] = {
    "account": "account.name",
    "product": "product.name",
    "rep": "rep.name",
    "manager": "rep.manager",
    "office": "rep.office",
    "sector": "account.sector",
    "stage": "deal.stage",
    "deal": "deal.id",
}


class SemanticChoice(BaseModel):
    """What the planner chooses, flat and from closed lists (a small model fills it reliably):
    which records (`subject`), what to compute (`measure`, with `metric` or `field`), split by
    `group_by`, ranked (`rank`, `top_n`), under `conditions` on attributes and `having` on a
    record's deal metrics. Names of records are left out: the resolver supplies them."""

    subject: Entity = Field(description="the records asked about: account, product, rep or deal")
    measure: Measure = Field(
        description="list names, count records, count_distinct values of field, sum/avg/min/max of a "
        "numeric field, a deal metric, or the share (percent) of records meeting a condition"
    )
    metric: MetricName | Literal["none"] = "none"
    field: FieldName | Literal["none"] = "none"
    group_by: FieldName | Literal["none"] = "none"
    rank: Rank = "none"
    top_n: int = Field(1, description="how many records a ranking shows (1 to 20)")
    conditions: list[Condition] = Field(default_factory=list, max_length=4)
    share_conditions: list[Condition] = Field(default_factory=list, max_length=2)
    having: list[MetricCondition] = Field(default_factory=list, max_length=2)
    date_field: DateField = "close"

    @field_validator("top_n", mode="after")
    @classmethod
    def _rank_size(cls, value: int) -> int:
        return max(1, min(20, value))  # "top 0" or "top 50" is a slip, not another question

    @model_validator(mode="after")
    def _makes_a_query(self) -> SemanticChoice:
        complete_query(self, Entities())  # raises ValueError with the reason
        return self


def _entity_conditions(entities: Entities, taken: set[FieldName]) -> list[Condition]:
    by_field: dict[FieldName, list[str]] = {}
    for e in entities.items:
        name = ENTITY_FIELDS.get(e.kind)
        if name is None or name in taken:
            continue
        keys = by_field.setdefault(name, [])
        if e.key not in keys:
            keys.append(e.key)
    out = []
    for field, keys in by_field.items():
        if len(keys) == 1:
            out.append(Condition(field=field, op="eq", value=keys[0]))
        else:
            out.append(Condition(field=field, op="in", value=list(keys)))
    return out


def _with_words(choice: SemanticChoice, words: QuestionWords) -> SemanticChoice:
    """`choice` with what the question's words settle put over the model's parts."""
    update: dict[str, Any] = {}
    if words.subject is not None:
        update["subject"] = words.subject
    counts_deals = choice.measure == "metric" and choice.metric in COUNTING_METRICS
    if words.measure == "share" and choice.measure != "share":
        update["measure"] = "share"
    elif words.measure == "count" and choice.measure != "count" and not counts_deals:
        update |= {"measure": "count", "field": "none", "metric": "none"}
    elif words.measure == "list" and choice.measure in ("count", "count_distinct"):
        update["measure"] = "list"
    if words.conditions:
        bounded = {c.field for c in words.conditions}
        update["conditions"] = [c for c in choice.conditions if c.field not in bounded] + words.conditions
    if not words.grouping:
        update["group_by"] = "none"
    if not words.ranking:
        update["rank"] = "none"
    if not words.deal_filter:
        update["having"] = []
    return choice.model_copy(update=update)


def complete_query(choice: SemanticChoice, entities: Entities, message: str = "") -> SemanticQuery:
    """The query of the planner's `choice` with the resolved `entities` and period as
    conditions (a period bounds `deal.close_date` or `deal.engage_date`, per `date_field`), the
    ranking as order and limit. With the `message`, what its words settle wins over the model
    (`tools.semantic_words.read_question`): the measure and subject of "how many accounts" or
    "what percentage of our products", the conditions stated in figures ("more than 1,000
    employees", "founded before 1990"), and no grouping, ranking or deal-metric filter that no
    word of the question asks for. Raises ValueError (pydantic's ValidationError) when the parts
    make no question (see `crm.semantic.query.validate_query`)."""
    if message:
        choice = _with_words(choice, read_question(message))
    conditions = list(choice.conditions)
    taken = {c.field for c in conditions if c.op in ("eq", "in")}
    named = _entity_conditions(entities, taken)
    share_conditions = list(choice.share_conditions)
    conditions += named
    if choice.measure == "share" and not share_conditions:
        # "what percentage of our accounts are in retail": the subject's own condition named in
        # the question is the part whose share is asked, the rest bounds the whole
        own_conditions = [c for c in conditions if own(choice.subject, c.field)]
        share_conditions = own_conditions[-1:]
        conditions = [c for c in conditions if c not in share_conditions]
    if entities.period is not None:
        date: FieldName = "deal.engage_date" if choice.date_field == "engage" else "deal.close_date"
        conditions += [
            Condition(field=date, op="gte", value=entities.period.start),
            Condition(field=date, op="lt", value=entities.period.end),
        ]
    field = None if choice.field == "none" else choice.field
    metric = None if choice.metric == "none" else choice.metric
    # a list names records one by one: a grouping chosen with it has no meaning
    group_by = None if choice.group_by == "none" or choice.measure == "list" else choice.group_by
    order: Order | None = None
    limit: int | None = None
    if choice.rank != "none":
        direction: Literal["desc", "asc"] = "desc" if choice.rank == "highest" else "asc"
        ranked_value = choice.measure != "list" or field is None
        order = Order(by="value" if ranked_value else field or "value", direction=direction)
        limit = choice.top_n
        if choice.measure == "list" and field is None and metric is not None:
            order = Order(by=metric, direction=direction)
    return SemanticQuery(
        subject=choice.subject,
        where=conditions,
        measure=choice.measure,
        field=field,
        metric=metric,
        share_where=share_conditions,
        having=list(choice.having),
        group_by=group_by,
        order_by=order,
        limit=limit,
    )


#: The records asked about.
Subject = Annotated[Entity, Field(description="the records asked about")]


class _Plan(BaseModel):
    """A query shape; its measure comes first (the model writes the fields in this order)."""

    def choice(self) -> SemanticChoice:
        """This shape as the flat `SemanticChoice` (the parts it lacks at their defaults)."""
        return SemanticChoice.model_validate(self.model_dump())


class ListPlan(_Plan):
    """Names of records ("which accounts ...", "what does X cost": with `field`), optionally
    ranked by `field` ("the 3 cheapest products")."""

    measure: Literal["list"]
    subject: Subject
    conditions: Conditions = Field(default_factory=list, max_length=4)
    field: FieldName | Literal["none"] = "none"
    having: Having = Field(default_factory=list, max_length=2)
    rank: Rank = "none"
    top_n: int = 1


class CountPlan(_Plan):
    """How many records ("how many accounts ..."), optionally per group."""

    measure: Literal["count"]
    subject: Subject
    conditions: Conditions = Field(default_factory=list, max_length=4)
    having: Having = Field(default_factory=list, max_length=2)
    group_by: FieldName | Literal["none"] = "none"
    date_field: DateField = "close"


class DistinctPlan(_Plan):
    """How many distinct values of an attribute ("how many managers", "in how many countries")."""

    measure: Literal["count_distinct"]
    subject: Subject
    conditions: Conditions = Field(default_factory=list, max_length=4)
    field: FieldName


class AggregatePlan(_Plan):
    """Sum, average, lowest or highest of a numeric attribute ("average headcount")."""

    measure: Literal["sum", "avg", "min", "max"]
    subject: Subject
    conditions: Conditions = Field(default_factory=list, max_length=4)
    field: FieldName
    group_by: FieldName | Literal["none"] = "none"
    date_field: DateField = "close"


class MetricPlan(_Plan):
    """A deal metric (win rate, revenue, deal counts, cycle): one figure, per group, or ranking the
    records ("which rep has the highest win rate")."""

    measure: Literal["metric"]
    subject: Subject
    conditions: Conditions = Field(default_factory=list, max_length=4)
    metric: MetricName
    group_by: FieldName | Literal["none"] = "none"
    rank: Rank = "none"
    top_n: int = 1
    date_field: DateField = "close"


class SharePlan(_Plan):
    """The percentage of the records that also meet `share_conditions`."""

    measure: Literal["share"]
    subject: Subject
    conditions: Conditions = Field(default_factory=list, max_length=4)
    share_conditions: list[Condition] = Field(min_length=1, max_length=2)


class SemanticPlan(BaseModel):
    """The planner's answer: one query shape, chosen by its measure."""

    query: Annotated[
        ListPlan | CountPlan | DistinctPlan | AggregatePlan | MetricPlan | SharePlan,
        Field(discriminator="measure"),
    ]

    @model_validator(mode="after")
    def _makes_a_query(self) -> SemanticPlan:
        # refused here (the choice's own check), the planner is re-asked with the reason
        # (crews.runner.kickoff_validated)
        self.choice()
        return self

    def choice(self) -> SemanticChoice:
        """The flat choice of this plan."""
        return self.query.choice()
