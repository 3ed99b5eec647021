"""Carry out a `QueryPlan` with the analytics tools and state the result in a sentence.

Every figure comes from `tools.analytics` (SQL). The sentence (`Answer.draft`) is built here from
the computed values; a crew may have the model reword it, falling back to this sentence when the
model drops a figure or adds one.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from config.files import load_pipeline
from contracts import Entities, Source
from crm.analytics import GroupBy
from crm.filters import DealFilter
from crm.schemas import MetricsRow
from tools import analytics, deals
from tools.answers import Answer
from tools.formatting import compared_across, count, count_fact, days, join_names, money, pct
from tools.query_plan import COUNT_METRICS, QueryPlan, deal_filter
from tools.sources import deal_source, metric_source

__all__ = ["METRIC_LABELS", "compute", "fmt", "metric_value", "scope_phrase"]

#: How each metric is named and shown. (label, formatter kind)
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "deals": ("deals", "count"),
    "open": ("open deals", "count"),
    "won": ("won deals", "count"),
    "lost": ("lost deals", "count"),
    "closed": ("closed deals", "count"),
    "win_rate": ("win rate", "pct"),
    "won_value": ("won revenue", "money"),
    "avg_won_value": ("average won deal size", "money"),
    "max_won_value": ("largest won deal", "money"),
    "avg_cycle_days": ("average sales cycle of won deals (engagement to close)", "days"),
    "open_pipeline_value": ("open pipeline value", "money"),
    "weighted_forecast": ("weighted forecast of the open pipeline", "money"),
}

#: Group kinds whose records the resolver names (a set of them restricts the ranking).
_SETS = ("rep", "account", "product", "office", "manager", "sector")

_GROUP_NOUN: dict[str, str] = {
    "rep": "sales rep",
    "office": "regional office",
    "manager": "manager's team",
    "product": "product",
    "series": "product series",
    "account": "account",
    "sector": "sector",
    "stage": "stage",
    "month": "month",
}


def fmt(metric: str, value: float | int | None) -> str:
    """A metric's value as shown to a rep."""
    kind = METRIC_LABELS.get(metric, ("", "count"))[1]
    if value is None:
        return "n/a"
    if kind == "pct":
        return pct(float(value))
    if kind == "money":
        return money(float(value))
    if kind == "days":
        return days(float(value))
    return f"{int(value):,}"


def metric_value(row: MetricsRow, metric: str) -> float | int | None:
    """The value of `metric` in a metrics row ("closed" = won + lost)."""
    if metric == "closed":
        return row.won + row.lost
    value: float | int | None = getattr(row, metric)
    return value


def scope_phrase(f: DealFilter, entities: Entities, date_field: str) -> str:
    """How the filtered deals are described: " for Kary Hendrixson with Yearin in March 2017";
    " in your pipeline" (one rep) or " in your team's pipeline" when `rep_ids` limits the deals to
    the caller's scope."""
    parts = []
    names = {e.kind: e.key for e in reversed(entities.items)}
    if f.rep_ids is not None:
        parts.append("in your pipeline" if len(f.rep_ids) <= 1 else "in your team's pipeline")
    if f.rep is not None:
        parts.append(f"for {names.get('rep', f.rep)}")
    if f.manager is not None:
        parts.append(f"in {f.manager}'s team")
    if f.office is not None:
        parts.append(f"in the {f.office} office")
    if f.account is not None:
        parts.append(f"with {names.get('account', f.account)}")
    if f.product is not None:
        parts.append(f"for {names.get('product', f.product)}")
    if f.sector is not None:
        parts.append(f"in the {f.sector} sector")
    if f.series is not None:
        parts.append(f"in the {f.series.upper()} series")
    if f.has_account is False:
        parts.append("with no account attached")
    if f.stages:
        stages = [load_pipeline().resolve(s) for s in f.stages]
        parts.append("in " + join_names([s.name if s else "?" for s in stages]))
    if entities.period is not None and (f.engaged_from or f.closed_from):
        verb = "closed" if date_field == "close" else "engaged"
        parts.append(f"{verb} in {entities.period.label}")
    return (" " + " ".join(parts)) if parts else ""


def _filter_facts(f: DealFilter) -> dict[str, Any]:
    # the caller's scope is said in words (scope_phrase); its rep ids are no figure of the answer
    return f.model_dump(mode="json", exclude_none=True, exclude={"rep_ids"})


def _single(session: Session, plan: QueryPlan, f: DealFilter, scope: str) -> Answer:
    row = analytics.deal_metrics(session, f)[0]
    value = metric_value(row, plan.metric)
    label = METRIC_LABELS[plan.metric][0]
    shown = fmt(plan.metric, value)
    facts: dict[str, Any] = {
        "metric": plan.metric,
        "value": value,
        "shown": shown,
        "filter": _filter_facts(f),
    }
    if plan.metric in COUNT_METRICS:
        noun = {
            "deals": "deal",
            "open": "open deal",
            "won": "won deal",
            "lost": "lost deal",
            "closed": "closed deal",
        }
        draft = f"There {'is' if value == 1 else 'are'} {count(int(value or 0), noun[plan.metric])}{scope}."
    elif plan.metric == "win_rate":
        if value is None:
            draft = f"There is no closed deal{scope}, so there is no win rate yet."
        else:
            draft = f"The win rate{scope} is {shown} ({row.won:,} won, {row.lost:,} lost)."
        facts.update(won=row.won, lost=row.lost)
    elif plan.metric == "avg_cycle_days":
        if value is None:
            draft = f"There is no won deal{scope} with both dates, so there is no cycle time."
        else:
            draft = (
                f"The average sales cycle of won deals{scope} is {shown} from engagement to close "
                f"({row.won:,} won deals)."
            )
        facts.update(won=row.won)
    elif plan.metric == "avg_won_value":
        draft = (
            f"The average won deal size{scope} is {shown} over {count(row.won, 'won deal')}."
            if value is not None
            else f"There is no won deal{scope}."
        )
        facts.update(won=row.won)
    elif plan.metric == "max_won_value":
        if value is None:
            draft = f"There is no won deal{scope}."
        else:
            top = deals.list_deals(session, f.model_copy(update={"status": "won"}), limit=1, sort="-value")
            which = f" (deal {top[0].external_id}, closed {top[0].close_date})" if top else ""
            draft = f"The largest won deal{scope} is {shown}{which}."
            if top:
                facts.update(deal=top[0].external_id)
                return Answer(
                    draft, [facts], [deal_source(top[0])], data={"metric": plan.metric, "value": value}
                )
    else:
        draft = f"The {label}{scope} is {shown}."
    src = metric_source(plan.metric, f"{label}{scope}".strip(), value, filter=_filter_facts(f))
    return Answer(draft, [facts], [src], data={"metric": plan.metric, "value": value})


def _grouped(
    session: Session, plan: QueryPlan, f: DealFilter, scope: str, only: set[str] | None = None
) -> Answer:
    group: GroupBy = (
        "engage_month"
        if plan.group_by == "month" and plan.date_field == "engage"
        else (
            "close_month" if plan.group_by == "month" else plan.group_by  # type: ignore[assignment]
        )
    )
    rows = [r for r in analytics.deal_metrics(session, f, group) if r.group is not None]
    if only:  # ranking among the records named ("which of them ...")
        rows = [r for r in rows if (r.group or "").lower() in only]
    metric = plan.metric
    valued: list[tuple[MetricsRow, float | int | None]] = [(r, metric_value(r, metric)) for r in rows]
    if plan.rank != "none":
        present: list[tuple[MetricsRow, float | int | None]] = [(r, v) for r, v in valued if v is not None]
        present.sort(key=lambda rv: rv[1], reverse=plan.rank == "highest")  # type: ignore[arg-type,return-value]
        valued = present[: plan.top_n]
    elif plan.group_by == "stage":
        valued = valued[:20]
    else:
        valued.sort(key=lambda rv: (rv[1] is None, -(rv[1] or 0)))
        valued = valued[:10]
    label = METRIC_LABELS[metric][0]
    noun = _GROUP_NOUN[plan.group_by]
    stage_names = {s.key: s.name for s in load_pipeline().stages}

    def name(r: MetricsRow) -> str:
        if plan.group_by == "month" and re.fullmatch(r"\d{4}-\d{2}", r.group or ""):
            year, month = (r.group or "").split("-")
            return f"{calendar.month_name[int(month)]} {year}"  # "June 2017", as people say it
        return stage_names.get(r.group or "", r.group or "") if plan.group_by == "stage" else (r.group or "")

    # "rank": the reply numbers the groups inline ("1. West: ...; 2. East: ..."), which the
    # grounding guard reads as figures (only a line-start number is a list marker to it)
    facts = [
        {
            "metric": metric,
            "group_by": plan.group_by,
            "group": name(r),
            "rank": i,
            "value": v,
            "shown": fmt(metric, v),
        }
        for i, (r, v) in enumerate(valued, 1)
    ]
    sources = [metric_source(metric, f"{label} of {name(r)}", v, group_by=plan.group_by) for r, v in valued]
    if not valued:
        return Answer(f"There are no deals{scope} to compare.", facts, sources)
    if plan.nth is not None and plan.rank != "none":
        return _nth(plan, valued, name, label, scope, facts, sources)
    if plan.having_op is not None:
        return _having(session, plan, f, rows, name, label, scope)
    if plan.rank != "none" and plan.top_n == 1:
        r, v = valued[0]
        which = "highest" if plan.rank == "highest" else "lowest"
        if metric in COUNT_METRICS:
            which = "most" if plan.rank == "highest" else "fewest"
            draft = f"{name(r)} has the {which} {label}{scope}: {fmt(metric, v)}."
        else:
            draft = f"{name(r)} has the {which} {label}{scope}: {fmt(metric, v)}."
        if len(rows) > 1:
            across = compared_across(len(rows), noun)
            draft += " " + across.text
            facts += across.facts
        return Answer(
            draft, facts, sources, names=[name(r)], data={"metric": metric, "group_by": plan.group_by}
        )
    items = "; ".join(f"{i}. {name(r)}: {fmt(metric, v)}" for i, (r, v) in enumerate(valued, 1))
    if plan.rank != "none":
        which = "highest" if plan.rank == "highest" else "lowest"
        draft = f"The {len(valued)} {noun}s with the {which} {label}{scope}: {items}."
        facts.append(count_fact("groups_listed", len(valued)))
    else:
        draft = f"{label.capitalize()}{scope} by {noun}: {items}."
    return Answer(
        draft, facts, sources, names=[name(valued[0][0])], data={"metric": metric, "group_by": plan.group_by}
    )


_ORDINAL_WORDS = {2: "second", 3: "third", 4: "fourth", 5: "fifth"}
_OP_WORDS = {">": "above", ">=": "of at least", "<": "below", "<=": "of at most"}
_COUNT_OP_WORDS = {">": "more than", ">=": "at least", "<": "fewer than", "<=": "at most"}
_COMPARE_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _having(
    session: Session,
    plan: QueryPlan,
    f: DealFilter,
    rows: list[MetricsRow],
    name: Callable[[MetricsRow], str],
    label: str,
    scope: str,
) -> Answer:
    """Every group whose figure passes the plan's threshold ("East-office reps with a win rate
    above 65%"; "below the company-wide rate": the figure over every deal of the period and the
    caller's scope), highest first, with the threshold stated."""
    assert plan.having_op is not None
    metric = plan.metric
    threshold = plan.having_value
    overall_text = ""
    if plan.having_overall:
        everything = DealFilter(
            engaged_from=f.engaged_from,
            engaged_to=f.engaged_to,
            closed_from=f.closed_from,
            closed_to=f.closed_to,
            rep_ids=f.rep_ids,
        )
        value = metric_value(analytics.deal_metrics(session, everything)[0], metric)
        threshold = float(value) if value is not None else None
        overall_text = " (the figure over all deals)"
    noun = _GROUP_NOUN[plan.group_by]
    if threshold is None:
        return Answer(f"There is no {label} over all deals to compare with.", [], [])
    test = _COMPARE_OPS[plan.having_op]
    passing = [
        (r, v) for r in rows if (v := metric_value(r, metric)) is not None and test(float(v), threshold)
    ]
    passing.sort(key=lambda rv: -float(rv[1] or 0))
    if metric in COUNT_METRICS:  # "more than 10 open deals"
        bound = f"{_COUNT_OP_WORDS[plan.having_op]} {fmt(metric, threshold)} {label}{overall_text}"
    else:  # "a win rate above 65.0%"
        bound = f"a {label} {_OP_WORDS[plan.having_op]} {fmt(metric, threshold)}{overall_text}"
    facts: list[dict[str, Any]] = [
        {"metric": metric, "group_by": plan.group_by, "group": name(r), "value": v, "shown": fmt(metric, v)}
        for r, v in passing
    ]
    facts.append({"metric": metric, "threshold": threshold, "op": plan.having_op})
    facts.append(count_fact("groups_passing", len(passing)))
    facts.append(count_fact("groups_compared", len(rows)))
    if not passing:
        draft = f"No {noun}{scope} has {bound} (compared across {count(len(rows), noun)})."
        return Answer(draft, facts, [], data={"metric": metric, "group_by": plan.group_by})
    items = "; ".join(f"{name(r)}: {fmt(metric, v)}" for r, v in passing[:25])
    more = f" and {len(passing) - 25} more" if len(passing) > 25 else ""
    draft = (
        f"{count(len(passing), noun)}{scope} {'has' if len(passing) == 1 else 'have'} {bound}: {items}{more}."
    )
    sources = [
        metric_source(metric, f"{label} of {name(r)}", v, group_by=plan.group_by) for r, v in passing[:25]
    ]
    return Answer(draft, facts, sources, names=[name(r) for r, _ in passing[:25]],
                  data={"metric": metric, "group_by": plan.group_by})  # fmt: skip


def _nth(
    plan: QueryPlan,
    valued: list[tuple[MetricsRow, float | int | None]],
    name: Callable[[MetricsRow], str],
    label: str,
    scope: str,
    facts: list[dict[str, Any]],
    sources: list[Source],
) -> Answer:
    """The group at the ranked place `plan.nth` ("second-most won revenue"), with the ones ranked
    above it (ties are kept in the order SQL gave them)."""
    assert plan.nth is not None
    noun = _GROUP_NOUN[plan.group_by]
    if len(valued) < plan.nth:
        return Answer(f"There are only {count(len(valued), noun)}{scope} to rank.", facts, sources)
    r, v = valued[plan.nth - 1]
    if plan.metric in COUNT_METRICS:
        which = "most" if plan.rank == "highest" else "fewest"
    else:
        which = "highest" if plan.rank == "highest" else "lowest"
    above = "; ".join(
        f"{i}. {name(a)}: {fmt(plan.metric, b)}" for i, (a, b) in enumerate(valued[: plan.nth - 1], 1)
    )
    draft = (
        f"{name(r)} has the {_ORDINAL_WORDS[plan.nth]}-{which} {label}{scope}: {fmt(plan.metric, v)} "
        f"(above it: {above})."
    )
    return Answer(
        draft, facts, sources, names=[name(r)], data={"metric": plan.metric, "group_by": plan.group_by}
    )


def _stuck(session: Session, plan: QueryPlan, f: DealFilter, scope: str) -> Answer:
    stage = f.stages[0] if f.stages else None
    base = f.model_copy(update={"stages": None})
    found = analytics.stuck_deals(session, plan.stuck_days, stage, base, limit=200)
    listed = found[:5]
    facts: list[dict[str, Any]] = [{"metric": "stuck_deals", "days": plan.stuck_days, "count": len(found)}]
    facts += [
        {
            "deal": s.deal.external_id,
            "account": s.deal.account_name,
            "stage": s.deal.stage,
            "days_in_stage": s.days_in_stage,
        }
        for s in listed
    ]
    where = scope if stage else scope + " in any open stage"
    if not found:
        return Answer(
            f"No open deal{where} has been in its stage for more than {plan.stuck_days} days.", facts, []
        )
    items = "; ".join(
        f"{s.deal.external_id} ({s.deal.account_name or 'no account'}, {s.deal.stage_name}, "
        f"{s.days_in_stage} days)"
        for s in listed
    )
    more = f" The longest waiting: {items}." if listed else ""
    verb = "has" if len(found) == 1 else "have"
    draft = (
        f"{count(len(found), 'open deal')}{where} {verb} been stuck in their stage for more than "
        f"{plan.stuck_days} days.{more}"
    )
    return Answer(draft, facts, [deal_source(s.deal) for s in listed], data={"stuck": len(found)})


def _forecast(session: Session, f: DealFilter, scope: str, entities: Entities) -> Answer:
    fc = analytics.forecast(session, f)
    facts: list[dict[str, Any]] = [
        {
            "metric": "weighted_forecast",
            "value": fc.weighted_value,
            "shown": money(fc.weighted_value),
            "open_value": fc.open_value,
            "open_deals": fc.open_deals,
        }
    ]
    facts += [s.model_dump() for s in fc.by_stage if s.deals]
    stages = "; ".join(
        f"{s.name}: {count(s.deals, 'deal')}, {money(s.value)} x {round(s.probability * 100)}% "
        f"= {money(s.weighted)}"
        for s in fc.by_stage
        if s.deals
    )
    note = ""
    if entities.period is not None:
        note = (
            " Deals carry no expected close date, so this covers every open deal, "
            f"not only {entities.period.label}."
        )
    draft = (
        f"The weighted forecast{scope} is {money(fc.weighted_value)}: "
        f"{count(fc.open_deals, 'open deal')} worth "
        f"{money(fc.open_value)}, each weighted by its stage's win probability ({stages}).{note}"
    )
    src = metric_source("weighted_forecast", f"weighted forecast{scope}".strip(), fc.weighted_value)
    return Answer(draft, facts, [src], data=fc.model_dump())


def _pipeline_value(session: Session, plan: QueryPlan, f: DealFilter, scope: str) -> Answer:
    if plan.group_by not in ("none", "stage"):
        return _grouped(session, plan, f.model_copy(update={"status": "open"}), scope)
    summary = analytics.pipeline_summary(session, f)
    open_keys = set(load_pipeline().open_keys)
    stages = [s for s in summary.by_stage if s.stage in open_keys]
    total = sum(s.value for s in stages)
    facts: list[dict[str, Any]] = [{"metric": "open_pipeline_value", "value": total, "shown": money(total)}]
    facts += [s.model_dump() for s in summary.by_stage]
    items = "; ".join(f"{s.name}: {count(s.deals, 'deal')}, {money(s.value)}" for s in stages)
    draft = f"The open pipeline{scope} is worth {money(total)} ({items})."
    if plan.group_by == "stage":
        closed = "; ".join(
            f"{s.name}: {count(s.deals, 'deal')}, {money(s.value)}"
            for s in summary.by_stage
            if s.stage not in open_keys
        )
        draft += f" Closed: {closed}."
    src = metric_source("open_pipeline_value", f"open pipeline value{scope}".strip(), total)
    return Answer(draft, facts, [src], data=summary.model_dump())


def _summary(session: Session, f: DealFilter, scope: str) -> Answer:
    s = analytics.pipeline_summary(session, f)
    facts = [s.model_dump()]
    rate = f", a win rate of {pct(s.win_rate)}" if s.win_rate is not None else ""
    draft = (
        f"Pipeline{scope}: {count(s.total_deals, 'deal')}, {s.open:,} open, {s.won:,} won "
        f"and {s.lost:,} lost{rate}; "
        f"won revenue {money(s.won_value)}."
    )
    src = metric_source("summary", f"pipeline summary{scope}".strip(), s.total_deals)
    return Answer(draft, facts, [src], data=s.model_dump())


def _deal_list(session: Session, plan: QueryPlan, f: DealFilter, scope: str) -> Answer:
    from crm import repository

    page = repository.list_deals(session, f, limit=10, sort="-engage_date")
    shown = page.items
    facts: list[dict[str, Any]] = [{"metric": "deals", "value": page.total}]
    facts += [
        {"deal": d.external_id, "account": d.account_name, "stage": d.stage, "value": d.value} for d in shown
    ]
    if not shown:
        return Answer(f"There are no deals{scope}.", facts, [])
    items = "; ".join(
        f"{d.external_id} ({d.account_name or 'no account'}, {d.product_name or 'no product'}, {d.stage_name}"
        + (f", {money(d.value)}" if d.value else "")
        + ")"
        for d in shown
    )
    what = {"open": "open deals", "won": "won deals", "lost": "lost deals", "closed": "closed deals"}.get(
        plan.list_status or "", "deals"
    )
    head = f"There are {page.total:,} {what}{scope}"
    draft = f"{head}; the most recent: {items}." if page.total > len(shown) else f"{head}: {items}."
    return Answer(draft, facts, [deal_source(d) for d in shown], data={"total": page.total})


def compute(
    session: Session,
    plan: QueryPlan,
    entities: Entities,
    message: str = "",
    *,
    rep_ids: frozenset[int] | None = None,
) -> Answer:
    """Run `plan` against the CRM (`message` tells a stage from the same word used as a verb),
    over the deals of `rep_ids` only (the caller's `read_rep_ids`; None: every deal), so "our win
    rate" asked by a rep is theirs. Raises crm.errors.Invalid when a filter value is unknown."""
    f = deal_filter(plan, entities, message)
    if rep_ids is not None:
        f = f.model_copy(update={"rep_ids": rep_ids})
    scope = scope_phrase(f, entities, plan.date_field)
    if plan.metric == "stuck_deals":
        return _stuck(session, plan, f, scope)
    if plan.metric == "weighted_forecast" and plan.group_by == "none":
        return _forecast(session, f, scope, entities)
    if plan.metric == "open_pipeline_value":
        return _pipeline_value(session, plan, f, scope)
    if plan.metric == "summary":
        return _summary(session, f, scope)
    if plan.metric == "deal_list":
        return _deal_list(session, plan, f, scope)
    if plan.group_by != "none":
        named = entities.of(plan.group_by) if plan.group_by in _SETS else []  # type: ignore[arg-type]
        only = {e.key.lower() for e in named} if len(named) >= 2 else None
        return _grouped(session, plan, f, scope, only)
    return _single(session, plan, f, scope)
