"""Two questions the single-figure rules answer wrongly on their own: a comparison of two
records of one kind ("Which office has won more revenue, East or West?", "By how many points is
MG Special's win rate higher than GTX Pro's?") and a share ("What percentage of all deals are
still open?", "What share of our won revenue comes from GTX Pro?"). Both reuse the rules' plan
and filter (`tools.query_plan`) and the metrics SQL (`tools.analytics.deal_metrics`), once per
side, and state every figure they used.

`special_answer(session, plan, entities, message, rep_ids=...)` returns an `Answer`, or None when
the message is neither (the plan is then computed as usual).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from contracts import Entities, EntityRef
from crm.filters import DealFilter
from tools import analytics
from tools.answers import Answer
from tools.formatting import count, pct
from tools.pipeline_answers import METRIC_LABELS, fmt, metric_value, scope_phrase
from tools.query_plan import OPEN, WON, QueryPlan, deal_filter, masked
from tools.sources import metric_source

__all__ = ["special_answer"]

#: Kinds of records two of which can be compared on a deal metric.
COMPARABLE = ("office", "product", "account", "rep", "manager", "sector")
#: Metrics a comparison or a contribution share can compute on each side.
SIDE_METRICS = ("deals", "open", "won", "lost", "closed", "win_rate", "won_value", "avg_won_value",
                "max_won_value", "avg_cycle_days")  # fmt: skip

_COMPARE = re.compile(r"\b(than|vs\.?|versus|compared (?:to|with)|or|difference|gap|between)\b", re.I)
_SHARE = re.compile(
    r"\b(?:what|which) (?:percent(?:age)?|share|proportion|fraction|part)\b|\bhow much of\b|"
    r"\b(?:percent(?:age)?|share|proportion|fraction) of\b",
    re.I,
)
_FROM = re.compile(
    r"\b(?:comes?|came|coming) from\b|\baccount(?:s|ed)? for\b|\bcontribut\w+\b|"
    r"\b(?:generated|brought in|made) by\b|\bfrom\b",
    re.I,
)
_VERB_TAIL = re.compile(
    r"\b(?:are|were|is|was|did|do|does|have been|has been|got|ended up|end up)\b(.*)$", re.I
)
_LOST_WORD = re.compile(r"\b(lost|lose|losses)\b", re.I)
_CLOSED_WORD = re.compile(r"\bclosed\b", re.I)


def _sides(entities: Entities) -> tuple[str, list[EntityRef]] | None:
    for kind in COMPARABLE:
        refs = entities.of(kind)  # type: ignore[arg-type]
        distinct = list({e.key: e for e in refs}.values())
        if len(distinct) >= 2:
            return kind, distinct[:2]
    return None


def _with_only(entities: Entities, kind: str, keep: EntityRef | None) -> Entities:
    items = [e for e in entities.items if e.kind != kind] + ([keep] if keep is not None else [])
    return Entities(items=items, period=entities.period)


def _value(session: Session, f: DealFilter, metric: str) -> float | int | None:
    return metric_value(analytics.deal_metrics(session, f)[0], metric)


def _scoped(f: DealFilter, rep_ids: frozenset[int] | None) -> DealFilter:
    return f.model_copy(update={"rep_ids": rep_ids}) if rep_ids is not None else f


def _difference(metric: str, gap: float) -> str:
    if METRIC_LABELS[metric][1] == "pct":
        return f"{gap:.1f} percentage points"
    return fmt(metric, gap)


def _compare(
    session: Session, plan: QueryPlan, entities: Entities, message: str, rep_ids: frozenset[int] | None
) -> Answer | None:
    sides = _sides(entities)
    if sides is None or plan.metric not in SIDE_METRICS or plan.group_by != "none":
        return None
    kind, refs = sides
    label = METRIC_LABELS[plan.metric][0]
    values: list[tuple[str, float | int | None, str]] = []
    facts: list[dict[str, Any]] = []
    for ref in refs:
        ents = _with_only(entities, kind, ref)
        f = _scoped(deal_filter(plan, ents, message), rep_ids)
        value = _value(session, f, plan.metric)
        scope = scope_phrase(f, ents, plan.date_field).strip()
        values.append((ref.key, value, scope))
        facts.append(
            {"metric": plan.metric, "group": ref.key, "value": value, "shown": fmt(plan.metric, value)}
        )
    (a, va, sa), (b, vb, sb) = values
    draft = f"The {label} {sa} is {fmt(plan.metric, va)}; {sb} it is {fmt(plan.metric, vb)}."
    if va is not None and vb is not None:
        if va == vb:
            draft += " They are equal."
        else:
            hi, lo = (a, b) if va > vb else (b, a)
            hi = hi[:1].upper() + hi[1:]
            gap = abs(float(va) - float(vb))
            draft += f" {hi} is higher than {lo} by {_difference(plan.metric, gap)}."
            facts.append({"metric": plan.metric, "difference": round(gap, 2), "higher": hi})
    sources = [metric_source(plan.metric, f"{label} {s}", v) for _, v, s in values]
    return Answer(draft, facts, sources, names=[a, b], data={"metric": plan.metric, "compared": [a, b]})


def _ratio(num: float | int | None, den: float | int | None) -> float | None:
    if num is None or not den:
        return None
    return 100.0 * float(num) / float(den)


def _contribution(
    session: Session, plan: QueryPlan, entities: Entities, message: str, rep_ids: frozenset[int] | None
) -> Answer | None:
    """ "What share of our won revenue comes from GTX Pro": the metric of the record named after
    "from" over the same metric without it."""
    text = masked(message, entities)
    m = _FROM.search(message)
    if m is None or plan.metric not in ("won_value", "won", "lost", "open", "deals", "closed"):
        return None
    part = next(
        (
            e
            for e in entities.items
            if e.kind in COMPARABLE and e.mention and message.find(e.mention) > m.start()
        ),
        None,
    )
    if part is None or "<" not in text:
        return None
    whole_ents = _with_only(entities, part.kind, None)
    f_part = _scoped(deal_filter(plan, entities, message), rep_ids)
    f_whole = _scoped(deal_filter(plan, whole_ents, message), rep_ids)
    num, den = _value(session, f_part, plan.metric), _value(session, f_whole, plan.metric)
    share = _ratio(num, den)
    label = METRIC_LABELS[plan.metric][0]
    whole_scope = scope_phrase(f_whole, whole_ents, plan.date_field)
    if share is None:
        return Answer(f"There is no {label}{whole_scope} to take a share of.", [], [])
    draft = (
        f"{part.key} accounts for {pct(share)} of the {label}{whole_scope} "
        f"({fmt(plan.metric, num)} of {fmt(plan.metric, den)})."
    )
    facts = [
        {"metric": plan.metric, "part": part.key, "value": num, "total": den, "share_pct": round(share, 1)}
    ]
    return Answer(draft, facts, [metric_source(plan.metric, f"share of {label}", share)], names=[part.key],
                  data={"metric": plan.metric, "share": share})  # fmt: skip


def _status_share(
    session: Session, entities: Entities, message: str, rep_ids: frozenset[int] | None
) -> Answer | None:
    """ "What percentage of all Hottechi deals were lost", "Of the deals X closed, what share did
    he win": deals of one status over all the deals in scope (over the closed ones when the
    question counts only closed deals)."""
    share_at = _SHARE.search(message)
    if share_at is None:
        return None
    tail_m = _VERB_TAIL.search(message, share_at.end())
    tail = tail_m.group(1) if tail_m else message[share_at.end() :]
    if _LOST_WORD.search(tail):
        status = "lost"
    elif WON.search(tail.lower()):
        status = "won"
    elif OPEN.search(tail.lower()):
        status = "open"
    else:
        return None
    head = message[: tail_m.start()] if tail_m else message[: share_at.start()]
    over_closed = status != "open" and _CLOSED_WORD.search(head) is not None
    base = QueryPlan(
        metric="closed" if over_closed else "deals", date_field="close" if over_closed else "engage"
    )
    f_all = _scoped(deal_filter(base, entities, message), rep_ids)
    f_part = f_all.model_copy(update={"status": status})
    den = _value(session, f_all, base.metric)
    num = _value(session, f_part, "deals")
    share = _ratio(num, den)
    scope = scope_phrase(f_all, entities, base.date_field)
    of_what = "closed deals" if over_closed else "deals"
    if share is None:
        return Answer(f"There are no {of_what}{scope} to take a share of.", [], [])
    verb = {"won": "were won", "lost": "were lost", "open": "are still open"}[status]
    draft = (
        f"{pct(share)} of the {of_what}{scope} {verb}: {count(int(num or 0), 'deal')} of {int(den or 0):,}."
    )
    facts = [{"status": status, "value": num, "total": den, "share_pct": round(share, 1)}]
    return Answer(draft, facts, [metric_source("share", f"share of {of_what} {verb}", share)],
                  data={"share": share, "status": status})  # fmt: skip


def special_answer(
    session: Session,
    plan: QueryPlan | None,
    entities: Entities,
    message: str,
    *,
    rep_ids: frozenset[int] | None = None,
) -> Answer | None:
    """A comparison of two named records, or a share, or None (see the module docstring).
    `plan`: the rules' plan of the message (None when they read none: only a share of deals by
    status can be answered then)."""
    if _SHARE.search(message):
        if plan is not None:
            found = _contribution(session, plan, entities, message, rep_ids)
            if found is not None:
                return found
        return _status_share(session, entities, message, rep_ids)
    if plan is not None and _COMPARE.search(message):
        return _compare(session, plan, entities, message, rep_ids)
    return None
