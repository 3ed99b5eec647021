"""Questions over the whole CRM through the semantic layer (`crm.semantic`): the planner's
choice completed into a query, the query run, and its result written as an answer.

1. The planner (a model, JSON constrained to `tools.semantic_plan.SemanticPlan`) picks from the
   layer's closed lists: the subject, the measure, a metric or attribute, a grouping, a ranking,
   and the conditions the message states in words ("more than 1,000 employees", "founded after
   2000", "with no won deal"); `tools.semantic_plan.complete_query` adds the records the message
   names, as the entity resolver found them.
2. `crm.semantic.run_query` computes the rows in SQL within the caller's scope.
3. `answer_of` writes them as one template sentence (every figure formatted from the result,
   none from the model), with the figures as facts for the guards.

`what_i_can_answer()` is the honest reply when a question fits none of this.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from contracts import Entities, Source
from crm.semantic import (
    FIELDS,
    METRICS,
    Condition,
    MetricCondition,
    SemanticQuery,
    describe,
    run_query,
    snap_values,
)
from crm.semantic.sql import ResultRow, SemanticResult
from tools.answers import Answer
from tools.formatting import count, days, join_names, money, pct
from tools.semantic_plan import SemanticChoice, SemanticPlan, complete_query

__all__ = [
    "SemanticChoice",
    "SemanticPlan",
    "answer_of",
    "describe",
    "semantic_answer",
    "what_i_can_answer",
]

# --- words ------------------------------------------------------------------------------------

_PLURAL = {"account": "accounts", "product": "products", "rep": "sales reps", "deal": "deals"}
_OPS = {
    "eq": "is",
    "ne": "is not",
    "gt": "above",
    "gte": "at least",
    "lt": "below",
    "lte": "at most",
    "contains": "contains",
    "in": "is one of",
}


#: How a reply names each attribute (the layer's names are for planners, not people).
FIELD_WORDS: dict[str, str] = {
    "account.name": "name",
    "account.sector": "sector",
    "account.employees": "employees",
    "account.revenue_musd": "annual revenue",
    "account.year_established": "founding year",
    "account.location": "location",
    "account.parent": "parent company",
    "product.name": "product",
    "product.series": "series",
    "product.list_price": "list price",
    "rep.name": "sales rep",
    "rep.manager": "manager",
    "rep.office": "office",
    "deal.id": "opportunity id",
    "deal.stage": "stage",
    "deal.status": "status",
    "deal.value": "deal value",
    "deal.engage_date": "engage date",
    "deal.close_date": "close date",
    "deal.cycle_days": "sales cycle",
    "deal.engage_month": "month engaged",
    "deal.close_month": "month closed",
    "deal.engage_quarter": "quarter engaged",
    "deal.close_quarter": "quarter closed",
    "deal.engage_year": "year engaged",
    "deal.close_year": "year closed",
}
assert set(FIELD_WORDS) == set(FIELDS), "every attribute needs its words"

#: How a reply names each metric, and for the counting ones the thing counted (singular).
METRIC_WORDS: dict[str, tuple[str, str | None]] = {
    "deals": ("number of deals", "deal"),
    "open": ("number of open deals", "open deal"),
    "won": ("number of won deals", "won deal"),
    "lost": ("number of lost deals", "lost deal"),
    "closed": ("number of closed deals", "closed deal"),
    "win_rate": ("win rate", None),
    "won_value": ("revenue", None),
    "avg_won_value": ("average won deal size", None),
    "max_won_value": ("largest won deal", None),
    "min_won_value": ("smallest won deal", None),
    "avg_cycle_days": ("average sales cycle", None),
    "open_pipeline_value": ("open pipeline value", None),
}
assert set(METRIC_WORDS) == set(METRICS), "every metric needs its words"


def _label(name: str, subject: str | None = None) -> str:
    """How a reply names an attribute or metric; another entity's name carries its entity
    ("account name" of a deal)."""
    if name in METRIC_WORDS:
        return METRIC_WORDS[name][0]
    spec = FIELDS[name]
    words = FIELD_WORDS[name]
    return f"{spec.entity} {words}" if words == "name" and spec.entity != subject else words


def _unit(name: str | None) -> str | None:
    """The unit of a metric or attribute of the layer (None: a plain number or text)."""
    if name in METRICS:
        return METRICS[name].unit
    if name in FIELDS:
        return FIELDS[name].unit
    return None


def _number(unit: str | None, value: Any) -> str:
    """`value` as a reply writes it in `unit` (`_unit`): money, percent, days, a year, or a
    count."""
    if value is None:
        return "n/a"
    if not isinstance(value, int | float):
        return str(value)
    if unit == "USD":
        return money(float(value))
    if unit == "%":
        return pct(float(value))
    if unit == "days":
        return days(float(value))
    if unit == "year":
        return str(int(value))
    if unit == "million USD":
        return f"{money(float(value))} million"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{float(value):,.1f}"


def _conditions_text(conditions: list[Condition], subject: str) -> str:
    parts = []
    for c in conditions:
        label = _label(c.field, subject)
        if c.op == "is_empty":
            parts.append(f"no {label}")
        elif c.op == "not_empty":
            parts.append(f"a {label}")
        else:
            value = join_names([str(v) for v in c.value]) if isinstance(c.value, list) else str(c.value)
            if FIELDS[c.field].kind == "number" and not isinstance(c.value, list):
                value = _number(_unit(c.field), float(c.value))  # type: ignore[arg-type]
            parts.append(f"{label} {_OPS[c.op]} {value}")
    return " and ".join(parts)


def _having_text(having: list[MetricCondition]) -> str:
    """ "no won deal", "at least one open deal", "more than 3 lost deals", "win rate above 60.0%"."""
    parts = []
    for h in having:
        words, noun = METRIC_WORDS[h.metric]
        n = h.value
        if noun is not None and n.is_integer():
            if (h.op == "eq" and n == 0) or (h.op == "lt" and n == 1) or (h.op == "lte" and n == 0):
                parts.append(f"no {noun}")
            elif (h.op == "gt" and n == 0) or (h.op == "gte" and n == 1):
                parts.append(f"at least one {noun}")
            else:
                parts.append(f"{_OPS[h.op]} {count(int(n), noun)}".replace("is ", "exactly ", 1))
        else:
            parts.append(f"{words} {_OPS[h.op]} {_number(_unit(h.metric), n)}")
    return " and ".join(parts)


def _filters_text(q: SemanticQuery) -> str:
    """ " where sector is retail, with no won deal" ("" without conditions)."""
    text = ""
    if q.where:
        text += f" where {_conditions_text(q.where, q.subject)}"
    if q.having:
        text += f"{',' if q.where else ''} with {_having_text(q.having)}"
    return text


def _scope_text(q: SemanticQuery) -> str:
    """ "accounts where sector is retail, with no won deal"."""
    return _PLURAL[q.subject] + _filters_text(q)


def _what(q: SemanticQuery) -> str:
    """The figure a single-value or grouped answer states, e.g. "win rate", "average account
    employees"."""
    if q.measure == "metric" and q.metric is not None:
        return _label(q.metric)
    if q.measure == "count":
        return f"number of {_PLURAL[q.subject]}"
    if q.measure == "count_distinct" and q.field is not None:
        return f"number of distinct {_label(q.field, q.subject)} values"
    if q.measure == "share":
        return f"share with {_conditions_text(q.share_where, q.subject)}"
    names = {"sum": "total", "avg": "average", "min": "lowest", "max": "highest"}
    return f"{names.get(q.measure, q.measure)} {_label(q.field, q.subject) if q.field else ''}".strip()


def _value_unit(q: SemanticQuery) -> str | None:
    """The unit of the measure's values."""
    if q.measure == "metric":
        return _unit(q.metric)
    if q.measure == "share":
        return "%"
    if q.measure in ("sum", "avg", "min", "max", "list"):
        return _unit(q.field)
    return None


def _row_figure(q: SemanticQuery, r: ResultRow) -> tuple[str | None, Any]:
    """The figure a row of a list or ranking shows, with its unit."""
    if q.order_by is not None and q.order_by.by not in ("value", None) and str(q.order_by.by) in r.extra:
        return _unit(str(q.order_by.by)), r.extra[str(q.order_by.by)]
    return _value_unit(q), r.value


def _row_text(q: SemanticQuery, r: ResultRow) -> str:
    unit, figure = _row_figure(q, r)
    label = r.label if r.label is not None else "none"
    if q.measure == "list" and (figure is None or str(figure) == label):
        return label
    return f"{label} ({_number(unit, figure)})"


def answer_of(result: SemanticResult) -> Answer:
    """The reply sentence of a result, its figures as facts and the query as its source:

    - one figure: "The win rate of deals where account sector is retail is 63.2%.";
      a count: "There are 12 accounts where sector is retail.";
    - one record ranked first: "Ann Alpha has the highest revenue among the sales reps: $5,600.";
    - a ranking, a list or groups: "The products with the lowest list price: GTX Basic ($550),
      MG Advanced ($3,393)." / "The win rate of deals by office: East (100.0%), West (75.0%).";
    - one named record's attribute: "Acme: founding year 1996.";
    - nothing: "No accounts where ... in the CRM."
    """
    q = result.query
    rows = result.rows
    facts: list[dict[str, Any]] = [{"label": r.label, "value": r.value, **r.extra} for r in rows]
    facts.append({"metric": "rows", "value": result.total})
    data = q.model_dump(mode="json", exclude_defaults=True)
    source = Source(kind="query", id="semantic", label=_scope_text(q), data=data)
    ranked = q.order_by is not None and q.limit is not None
    single = q.group_by is None and q.measure != "list" and not (q.measure == "metric" and ranked)

    def done(draft: str, names: list[str] | None = None) -> Answer:
        return Answer(draft, facts, [source], names=names or [], data={"query": data}, key_figures=[draft])

    if single:
        value = rows[0].value if rows else None
        if q.measure == "count" and isinstance(value, int | float):
            return done(f"There {'is' if value == 1 else 'are'} {_count_of(q, int(value))}.")
        return done(f"The {_what(q)} of {_scope_text(q)} is {_number(_value_unit(q), value)}.")
    if not rows:
        return done(f"No {_scope_text(q)} in the CRM.")
    names = [str(r.label) for r in rows[:3]]
    if ranked and q.order_by is not None:
        which = "highest" if q.order_by.direction == "desc" else "lowest"
        unit, figure = _row_figure(q, rows[0])
        by = _what(q) if q.order_by.by == "value" else _label(str(q.order_by.by), q.subject)
        if len(rows) == 1:
            head = f"{rows[0].label} has the {which} {by} among the {_scope_text(q)}"
            return done(f"{head}: {_number(unit, figure)}." if figure is not None else f"{head}.", names)
        head = f"The {_scope_text(q)} with the {which} {by}"
        return done(f"{head}: {', '.join(_row_text(q, r) for r in rows)}.", names)
    more = f" and {result.total - len(rows):,} more" if result.total > len(rows) else ""
    if q.group_by is not None:
        head = f"The {_what(q)} of {_scope_text(q)} by {_label(q.group_by, q.subject)}"
        return done(f"{head}: {', '.join(_row_text(q, r) for r in rows)}{more}.", names)
    if q.field is not None and len(rows) == 1:
        return done(
            f"{rows[0].label}: {_label(q.field, q.subject)} {_number(_unit(q.field), rows[0].value)}.", names
        )
    listed = ", ".join(_row_text(q, r) for r in rows)
    return done(f"The {_count_of(q, result.total)}: {listed}{more}.", names)


def _count_of(q: SemanticQuery, n: int) -> str:
    """ "12 accounts where sector is retail" (the noun in the singular for 1)."""
    plural = _PLURAL[q.subject]
    noun = plural[:-1] if n == 1 else plural
    return f"{n:,} {noun}{_filters_text(q)}"


def semantic_answer(
    session: Session,
    choice: SemanticChoice,
    entities: Entities,
    message: str = "",
    *,
    rep_ids: frozenset[int] | None = None,
) -> Answer:
    """`choice` completed with the entities and the words of `message` (`complete_query`), its
    values snapped to the CRM's (`crm.semantic.snap_values`), run within `rep_ids` (the caller's
    reading) and written (`answer_of`). Raises ValueError for a choice that makes no question
    and `crm.errors.Invalid` for one the database refuses."""
    query = snap_values(session, complete_query(choice, entities, message))
    return answer_of(run_query(session, query, rep_ids=rep_ids))


def what_i_can_answer() -> str:
    """The reply to a question the layer cannot express: what can be asked instead."""
    return (
        "I couldn't turn that into a question about the CRM. I can answer about accounts (sector, size, "
        "revenue, founding year, location, parent and subsidiaries), products (series, list price), the "
        "team (reps, managers, offices) and deals (counts, revenue, win rates, deal sizes, cycle times), "
        "filtered, ranked, compared or split by any of these."
    )
