"""From a rep's question to a query plan: which figure, over which deals, grouped how.

The entities and the period come from the entity resolver: they become the `DealFilter`. What is
asked (the metric, a grouping, a ranking) is read from the words of the message by the rules
below, so every plan is one `tools.pipeline_answers.compute` can carry out; when no rule matches,
the pipeline crew asks the LLM for a query of the semantic layer instead
(`tools.semantic_answers`). The model never computes a figure.

Rules are written for meaning, not for sentences: each is a set of synonyms a sales rep uses
("revenue", "bookings", "how much did we win"; "win rate", "close rate", "conversion"...), and the
names of the resolved entities are masked before matching so an account called "Top Ltd" or a
product called "GTX Pro" cannot trigger a rule.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, Field

from config.files import load_pipeline
from contracts import Entities, EntityRef
from crm.filters import DealFilter, FilterStatus

__all__ = [
    "CLOSE_DATED",
    "COUNT_METRICS",
    "PLAN_METRICS",
    "DateField",
    "GroupKind",
    "PlanMetric",
    "QueryPlan",
    "Rank",
    "asks_about_records",
    "deal_filter",
    "masked",
    "plan_from_rules",
    "stage_filter",
]

PlanMetric = Literal[
    "deals",
    "open",
    "won",
    "lost",
    "closed",
    "win_rate",
    "won_value",
    "avg_won_value",
    "max_won_value",
    "avg_cycle_days",
    "open_pipeline_value",
    "weighted_forecast",
    "stuck_deals",
    "deal_list",
    "summary",
]
PLAN_METRICS: tuple[str, ...] = PlanMetric.__args__  # type: ignore[attr-defined]

GroupKind = Literal[
    "none", "rep", "office", "manager", "product", "series", "account", "sector", "stage", "month"
]
Rank = Literal["none", "highest", "lowest"]
DateField = Literal["engage", "close"]

#: Metrics that count deals (their figure is an integer).
COUNT_METRICS = ("deals", "open", "won", "lost", "closed")
#: Metrics about closed deals: a period filters them by close date unless the message says
#: "engaged"/"started".
CLOSE_DATED = (
    "won",
    "lost",
    "closed",
    "win_rate",
    "won_value",
    "avg_won_value",
    "max_won_value",
    "avg_cycle_days",
)


class QueryPlan(BaseModel):
    """What to compute. `metric` over the deals the entities describe; `group_by` splits them
    (`rank` picks the `top_n` highest/lowest groups, "none" lists the groups); `date_field` says
    which date the period bounds; `stuck_days` is the threshold of "stuck" (days in stage);
    `source` records who chose the metric: "rules", "follow-up" (the rules, on the previous
    question of the thread) or "default" (the summary of the named records, when the planner
    could not fill a query of the semantic layer)."""

    metric: PlanMetric
    group_by: GroupKind = "none"
    rank: Rank = "none"
    top_n: int = Field(1, ge=1, le=20)
    date_field: DateField = "engage"
    stuck_days: int = 90
    list_status: FilterStatus | None = None
    nth: int | None = Field(None, ge=2, le=5, description='the ranked place asked for ("second-most")')
    having_op: Literal[">", "<", ">=", "<="] | None = Field(
        None, description='groups kept by their figure ("reps with a win rate above 65%")'
    )
    having_value: float | None = Field(None, description="the threshold (a percent in points, USD, a count)")
    having_overall: bool = Field(False, description="the threshold is the figure over all deals")
    source: Literal["rules", "follow-up", "default"] = "rules"


# --- matching -------------------------------------------------------------------------------


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


STUCK = _rx(
    r"\b(stuck|stall(ed|ing)?|stale|idle|aging|ageing|languish\w*|dormant|not moved|"
    r"(has|have)n'?t moved|no (progress|movement)|going nowhere)\b|"
    # "sitting in Engaging" is where deals are; sitting there for a time is being stuck
    r"\bsitting\b.{0,40}\b(for|over|more than|longer than|too long)\b"
)
FORECAST = _rx(
    r"\b(forecast\w*|weighted|projected|projection|predict\w*|expected (revenue|value|bookings|sales)|"
    r"expect to (close|win|book)|likely to (close|win)|will (we )?(close|win|book))\b"
)
WIN_RATE = _rx(
    r"\b(win[- ]?rates?|winn?ing (rate|ratio|percentage)|close[- ]?rates?|closing (rate|ratio)|conversion|"
    r"success rate|hit rate|win (ratio|percentage|%)|(percent|percentage|share|proportion|%) of "
    r"(\w+ )?(deals|opportunities) (\w+ )?won)\b"
)
CYCLE = _rx(
    r"\b(cycle|how long|how many days|days (does|do|did) it take|days to (close|win)|time to (close|win)|"
    r"average time|take to close|velocity|duration|days from)\b"
)
AVG_SIZE = _rx(
    r"\b(average|avg|mean|typical)\b.{0,25}\b(deal|sale|order|contract|size|value|amount|ticket|price)\b|"
    r"\bdeal size\b|\baverage won\b"
)
LARGEST = _rx(
    r"\b(largest|biggest|highest|most valuable|max(imum)?|greatest|top|single largest)\b.{0,20}"
    r"\b(deal|sale|contract|order|opportunit(y|ies)|win)\b"
)
PIPE_VALUE = _rx(
    r"\b(pipeline (value|worth|amount|total)|value of (the |our |all )?(open |active )?(pipeline|"
    r"deals|opportunities)|"
    r"open (pipeline|deal) value|(open|active) value|worth of (the |our )?(open )?(pipeline|deals)|"
    r"how much is (in )?(the |our )?pipeline|pipeline by stage|value by stage|pipeline worth)\b"
)
REVENUE = _rx(
    r"\b(revenue|bookings|turnover|income|sales (amount|value|volume|total)|total sales|won value|"
    r"total won|dollars?|money)\b|"
    r"\b(sold|sells?|selling|sales)\b.{0,25}\b(most|least|more|best|worst|total|overall)\b|"
    r"\bbest[- ]selling\b|"
    r"\bwhat (did|have|do) (we|they|you) (sell|sold)\b|\b(sell|sold|sales) to\b|"
    r"\bhow much\b.{0,40}\b(won|win|make|made|earn(ed)?|bring|brought|generat\w*|sell|sold|"
    r"close[d]?|book(ed)?)\b|"
    r"\$"
)
COUNTING = _rx(r"\b(how many|number of|count|total (number|deals)|tally|quantity)\b")
LISTING = _rx(r"\b(list|show( me)?|give me|display|which|what|see)\b.{0,40}\b(deals|opportunities)\b")
SUMMARY = _rx(r"\b(summary|overview|status|snapshot|health|how (are|is) .{0,30}(doing|going|looking))\b")

WON = _rx(r"\b(won|wins?|closed[- ]won|winning|clos\w* successful\w*|successful\w* clos\w*|signed)\b")
LOST = _rx(r"\b(lost|loss(es)?|lose|closed[- ]lost|losing)\b")
OPEN = _rx(
    r"\b(open|active|in progress|ongoing|live|pending|current(ly)?|right now|in (the |our )?pipeline|"
    r"still (open|going)|at the moment|working on|in play|in flight|not (yet )?closed)\b"
)
CLOSED = _rx(r"\bclosed\b")
WON_OR_LOST = _rx(r"\b(won or lost|lost or won|won and lost|lost and won|(either|whether) won)\b")
ENGAGED = _rx(
    r"\b(engag\w*|start(ed)?|began|begin|initiat\w*|creat\w*|opened|new deals|entered|added|came in)\b"
)
CLOSING_DATE = _rx(r"\b(clos\w*|won|win|lost|signed|booked)\b")

HIGHEST = _rx(
    r"\b(most|highest|top|best|largest|biggest|greatest|leading|max(imum)?|number one|#1|strongest)\b"
)
LOWEST = _rx(r"\b(least|lowest|fewest|worst|smallest|bottom|min(imum)?|weakest)\b")
#: "second-most", "3rd highest": the nth of a ranking.
ORDINAL = _rx(
    r"\b(second|third|fourth|fifth|2nd|3rd|4th|5th)[- ]?(most|highest|largest|biggest|best|greatest|"
    r"fewest|lowest|least|smallest|worst)\b"
)
_ORDINALS = {"second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5, "5th": 5}
TOP_N = _rx(
    r"\b(?:top|best|worst|bottom|which|what)\s+(\d{1,2})\b|\b(\d{1,2})\s+(?:best|top|biggest|largest|worst)\b"
)
DAYS = _rx(r"\b(\d{1,4})\s*(\+\s*)?days?\b")
MONTHS = _rx(r"\b(\d{1,2})\s*months?\b")

_REP = r"(sales ?)?(reps?|agents?|sales ?people|salespeople|sales ?persons?|representatives?|sellers?|ae'?s?)"
GROUPS: list[tuple[GroupKind, re.Pattern[str]]] = [
    ("month", _rx(r"\b(by|per|each|every) month\b|\bmonthly\b|\bmonth by month\b|\b(which|what) month\b")),
    (
        "stage",
        _rx(
            r"\b(by|per|each|every|across( all)?) (pipeline )?stages?\b|\bstage breakdown\b|"
            r"\b(which|what) stages?\b"
        ),
    ),
    (
        "office",
        _rx(
            r"\b(which|what) (regional )?(offices?|regions?)\b|\b(by|per|each|every|"
            r"across) (regional )?(offices?|regions?)\b"
        ),
    ),
    (
        "manager",
        _rx(r"\b(which|what) (managers?|teams?)\b|\b(by|per|each|every|across) (managers?|teams?)\b"),
    ),
    (
        "sector",
        _rx(
            r"\b(which|what) (sectors?|industr(y|ies)|verticals?)\b|\b(by|per|each|every|"
            r"across) (sectors?|industr(y|ies)|verticals?)\b"
        ),
    ),
    ("series", _rx(r"\b(which|what) (product )?series\b|\b(by|per|each) (product )?series\b")),
    (
        "product",
        _rx(
            r"\b(which|what)( \d{1,2})? products?\b|\b(by|per|each|every|across) products?\b|"
            r"\b(top|best|worst|bottom)( \d{1,2})? products?\b|\bbest[- ]selling products?\b"
        ),
    ),
    (
        "account",
        _rx(
            r"\b(which|what)( \d{1,2})?( [\w-]+)? (accounts|customers|clients|companies|buyers)\b|"
            r"\b(which|what)( \d{1,2})? (accounts?|customers?|clients?|compan(y|ies)|buyers?)\b|"
            r"\b(by|per|each|every|across) (accounts?|customers?|clients?)\b|"
            r"\b(top|biggest|largest|best|bottom|worst)( \d{1,2})? (accounts|customers|clients)\b"
        ),
    ),
    (
        "rep",
        _rx(
            rf"\b(which|what)( \d{{1,2}})?( [\w-]+)? {_REP}\b|\b(by|per|each|every|across) {_REP}\b|"
            rf"\b(top|best|worst|bottom)( \d{{1,2}})? {_REP}\b|"
            rf"\b(rank|ranking|leaderboard)\b|\bwho\b"
        ),
    ),
]

_GROUP_OF_ENTITY: dict[str, GroupKind] = {
    "rep": "rep",
    "account": "account",
    "product": "product",
    "office": "office",
    "manager": "manager",
    "sector": "sector",
    "stage": "stage",
}


#: Entity kinds whose words are masked before matching (names; stage, office and sector words
#: carry meaning the rules need: "won", "open", "engaging").
MASKED_KINDS = ("account", "contact", "rep", "manager", "product", "deal")


def stage_filter(message: str, entities: Entities) -> list[str]:
    """Stage keys the message filters on. Closed stages are left to the status rules ("won" is a
    status, and "deals won" is no stage filter), and an open stage's word used as a verb ("deals
    we started engaging in March") is not a stage."""
    pipeline = load_pipeline()
    keys: list[str] = []
    if CYCLE.search(message) or re.search(r"\bbetween engag\w* and\b", message, re.I):
        return keys  # "days between engaging and closing": the cycle's ends, not a stage filter
    for e in entities.of("stage"):
        stage = pipeline.get(e.key)
        if stage is None or stage.closed:
            continue
        word = re.escape(e.mention or stage.key)
        verb = re.search(
            rf"\b(start(ed|ing)?|begin|began|begun|were|are|is|was|been|did|do|we|they|we're|i'm|am)\s+"
            rf"(\w+\s+)?{word}\b(?!\s+(stage|phase|step|deals?))",
            message,
            re.I,
        )
        if not verb:
            keys.append(stage.key)
    return keys


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _names_entity(words: str, key: str) -> bool:
    """Whether `words` spell the entity's name (or a part of it: "Acme" for "Acme Corporation"),
    as opposed to a phrase that points at it ("Zane Levy's manager" for the manager Summer
    Sewald), whose words the rules must still see."""
    w, k = _squash(words), _squash(key)
    return bool(w) and (w in k or (k in w and len(w) - len(k) <= 2))


def masked(message: str, entities: Entities) -> str:
    """The message in lower case with each resolved entity's words replaced by `<kind_ent>` (so
    names cannot trigger rules) and typographic apostrophes made plain."""
    text = message.replace("’", "'").replace("‘", "'")
    words = []
    for e in entities.items:
        if e.kind not in MASKED_KINDS:
            continue
        for w in {e.mention, e.key}:
            if w and len(w) >= 2 and _names_entity(w, e.key):
                words.append((w, e.kind))
    for w, kind in sorted(words, key=lambda x: -len(x[0])):
        # "<rep_ent>": no rule word matches inside it ("\bmanager\b" does not match "<manager_ent>")
        text = re.sub(re.escape(w), f"<{kind}_ent>", text, flags=re.I)
    return text.lower()


def _named(entities: Entities, kind: str) -> bool:
    return entities.first(kind) is not None  # type: ignore[arg-type]


#: "the two accounts with the most ...": a number of records of one kind, ranked.
_NUMBERED_GROUP = _rx(
    rf"\b(?:two|three|four|five|ten|\d{{1,2}}) (accounts?|customers?|clients?|compan(?:y|ies)|products?|"
    rf"offices?|sectors?|managers?|{_REP})\b"
)
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}


#: Choosing among records listed before ("which of them", "who among those").
_AMONG = _rx(r"\b(which|who|what)\b.{0,15}\b(of|among) (them|those|these)\b")
_SET_KINDS: tuple[GroupKind, ...] = ("rep", "account", "product", "office", "manager", "sector")


def set_kind(entities: Entities) -> GroupKind | None:
    """The kind of which `entities` name two or more records (a set to rank among), or None."""
    return next((k for k in _SET_KINDS if len(entities.of(k)) >= 2), None)  # type: ignore[arg-type]


def _group(text: str, entities: Entities) -> GroupKind:
    among = set_kind(entities) if _AMONG.search(text) else None
    if among is not None:
        return among
    numbered = _NUMBERED_GROUP.search(text)
    if numbered and (HIGHEST.search(text) or LOWEST.search(text)):
        noun = numbered.group(1)
        for kind, prefix in (
            ("account", ("account", "customer", "client", "compan")),
            ("product", ("product",)),
            ("office", ("office",)),
            ("sector", ("sector",)),
            ("manager", ("manager",)),
        ):
            if noun.startswith(prefix):
                return kind  # type: ignore[return-value]
        return "rep"
    for kind, rx in GROUPS:
        if not rx.search(text):
            continue
        # "who" asks for a rep only when no rep is named ("Who is Zane Levy's manager?" is not
        # a ranking) and the question is about deals, not a person's attributes
        who_only = kind == "rep" and re.search(r"\bwho\b", text) and not re.search(_REP, text)
        if who_only and (_named(entities, "rep") or re.search(r"\b(manager|office|team|boss)\b", text)):
            continue
        return kind
    return "none"


def _count_metric(text: str) -> PlanMetric:
    if WON_OR_LOST.search(text):
        return "closed"
    if WON.search(text):
        return "won"
    if LOST.search(text):
        return "lost"
    if OPEN.search(text):
        return "open"
    if CLOSED.search(text):
        return "closed"
    return "deals"


def _metric(text: str, grouped: bool) -> PlanMetric | None:
    if STUCK.search(text):
        return "stuck_deals"
    if FORECAST.search(text):
        return "weighted_forecast"
    if WIN_RATE.search(text):
        return "win_rate"
    if CYCLE.search(text):
        return "avg_cycle_days"
    if AVG_SIZE.search(text):
        return "avg_won_value"
    if PIPE_VALUE.search(text):
        return "open_pipeline_value"
    if not grouped and LARGEST.search(text) and not COUNTING.search(text):
        return "max_won_value"
    if REVENUE.search(text):
        return "won_value"
    if COUNTING.search(text):
        return _count_metric(text)
    if grouped and (
        WON.search(text) or LOST.search(text) or OPEN.search(text) or re.search(r"\bdeals\b", text)
    ):
        return _count_metric(text)
    if LISTING.search(text):
        return "deal_list"
    if SUMMARY.search(text):
        return "summary"
    return None


def _date_field(text: str, metric: PlanMetric) -> DateField:
    if ENGAGED.search(text):
        return "engage"
    if metric in CLOSE_DATED or CLOSING_DATE.search(text):
        return "close"
    return "engage"


def _stuck_days(text: str) -> int:
    m = DAYS.search(text)
    if m:
        return int(m.group(1))
    m = MONTHS.search(text)
    if m:
        return 30 * int(m.group(1))
    return 90


def _top_n(text: str) -> int:
    m = TOP_N.search(text)
    if m:
        return max(1, min(20, int(m.group(1) or m.group(2))))
    numbered = re.search(r"\b(two|three|four|five|ten|\d{1,2}) \w+", text)
    if numbered and _NUMBERED_GROUP.match(numbered.group(0)):
        word = numbered.group(1)
        return max(1, min(20, _NUMBER_WORDS[word] if word in _NUMBER_WORDS else int(word)))
    return 1


#: Counting or sharing the CRM's records themselves ("how many accounts", "what share of our
#: products"), not their deals: the rules count deals only.
RECORD_COUNT = _rx(
    r"\b(how many|number of|count of|count the|percent(age)? of|share of|proportion of|fraction of|"
    r"ratio of)\s+(?:(?:our|the|all|of|distinct|different|unique|these|those)\s+)*(?:[\w-]+\s+)?"
    r"(accounts?|compan(?:y|ies)|customers?|clients?|products?|reps|sales ?reps|agents|salespeople|"
    r"sellers|managers|offices|sectors|industries|series|subsidiaries)\b"
)
#: Attributes of accounts, products and reps (a filter or a figure the deal rules cannot express).
RECORD_ATTRIBUTE = _rx(
    r"\b(employees?|headcount|staff|workforce|founded|established|incorporated|list price|"
    r"prices?|priced|costs?|annual revenue|located|location|based (in|outside|out of)|countr(y|ies)|"
    r"headquarter\w*|parent|"
    r"subsidiar(y|ies)|older than|younger than|oldest|youngest)\b"
)


def asks_about_records(message: str, entities: Entities) -> bool:
    """Whether the question is about accounts, products or reps as records (their number, their
    attributes) rather than about deals alone: the deal rules would answer something else, so
    the semantic layer answers it (`tools.semantic_answers`)."""
    text = masked(message, entities)
    return bool(RECORD_COUNT.search(text) or RECORD_ATTRIBUTE.search(text))


def plan_from_rules(message: str, entities: Entities) -> QueryPlan | None:
    """The plan the rules read from `message` (entities masked), or None when no rule matches
    or the question is about the records rather than their deals (`asks_about_records`): the
    crew then asks the LLM for a query of the semantic layer."""
    if asks_about_records(message, entities):
        return None
    text = masked(message, entities)
    group = _group(text, entities)
    metric = _metric(text, grouped=group != "none")
    if metric is None:
        return None
    # "by stage" of a named stage, "which rep" with a rep named: the entity wins, no grouping
    # (unless the question chooses among several named: "which of them")
    entity_wins = (
        group != "none"
        and not (_AMONG.search(text) and set_kind(entities) == group)
        and any(_GROUP_OF_ENTITY.get(e.kind) == group for e in entities.items)
    )
    if entity_wins and (group != "rep" or not re.search(rf"\b(which|what|top|best|worst) {_REP}", text)):
        group = "none"
    rank: Rank = "none"
    nth: int | None = None
    if group != "none" and _AMONG.search(text) and not (HIGHEST.search(text) or LOWEST.search(text)):
        rank = "highest"  # "which of them won most often"
    if group != "none":
        ordinal = ORDINAL.search(text)
        if ordinal:
            nth = _ORDINALS[ordinal.group(1).lower()]
            rank = "lowest" if LOWEST.search(ordinal.group(2)) else "highest"
        elif LOWEST.search(text):
            rank = "lowest"
        elif HIGHEST.search(text) or re.search(r"\bwho\b", text):
            rank = "highest"
    having_op, having_value, having_overall = _having(text) if group != "none" else (None, None, False)
    if having_op is not None:
        rank, nth = "none", None  # every group that passes, not the top one
    return QueryPlan(
        metric=metric,
        group_by=group,
        rank=rank,
        nth=nth,
        having_op=having_op,
        having_value=having_value,
        having_overall=having_overall,
        top_n=nth if nth is not None else (_top_n(text) if rank != "none" else 10),
        date_field=_date_field(text, metric),
        stuck_days=_stuck_days(text),
        list_status=_list_status(text),
    )


#: A threshold on the groups' figure: "above 65%", "more than 10 open deals", "at least $50k",
#: or "below the company-wide rate".
_THRESHOLD = _rx(
    r"\b(above|over|more than|greater than|higher than|at least|below|under|less than|fewer than|"
    r"lower than|at most)\s+(?:\$\s?)?(\d[\d,]*(?:\.\d+)?)\s*(%|k\b|thousand\b|m\b|million\b)?"
)
_VS_OVERALL = _rx(
    r"\b(above|over|higher than|better than|below|under|lower than|worse than)\s+(?:the\s+|our\s+)?"
    r"(company[- ]wide|overall|average|global|total|team[- ]wide)\b"
)
_OPS = {
    "above": ">", "over": ">", "more than": ">", "greater than": ">", "higher than": ">", "better than": ">",
    "at least": ">=", "below": "<", "under": "<", "less than": "<", "fewer than": "<", "lower than": "<",
    "worse than": "<", "at most": "<=",
}  # fmt: skip


def _having(text: str) -> tuple[Literal[">", "<", ">=", "<="] | None, float | None, bool]:
    """The threshold the groups must pass, from the words after the grouping: (op, value,
    against the overall figure)."""
    vs = _VS_OVERALL.search(text)
    if vs:
        return _OPS[vs.group(1).lower()], None, True  # type: ignore[return-value]
    m = _THRESHOLD.search(text)
    if m is None:
        return None, None, False
    value = float(m.group(2).replace(",", ""))
    unit = (m.group(3) or "").lower()
    value *= {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}.get(unit, 1.0)
    return _OPS[m.group(1).lower()], value, False  # type: ignore[return-value]


def _list_status(text: str) -> FilterStatus | None:
    status = _count_metric(text)
    return None if status == "deals" else status  # type: ignore[return-value]


# --- the filter -------------------------------------------------------------------------------

#: A product series named as such ("MG-series products", "the GTX series"); the CRM's own
#: series names are checked by the filter (an unknown one is an error the rep sees).
SERIES_NAMED = _rx(r"\b([a-z0-9]{2,12})[- ]series\b")
_NOT_SERIES = frozenset(
    {"product", "which", "what", "each", "per", "by", "the", "a", "our", "this", "that", "every"}
)
#: Deals with no account attached.
NO_ACCOUNT = _rx(
    r"\b(?:no|without(?: an?)?|missing(?: an?)?|lack(?:s|ing)?(?: an?)?) "
    r"(?:account|customer|company|client)\b"
)


def _ref(e: EntityRef) -> int | str:
    return e.id if e.id is not None else e.key


def deal_filter(plan: QueryPlan, entities: Entities, message: str = "") -> DealFilter:
    """The `DealFilter` of the entities (the first of each kind) and the period, for `plan`.
    The grouped-by kind is not filtered on ("which rep ..." ranks all reps)."""
    data: dict[str, object] = {}
    for kind, field in (
        ("rep", "rep"),
        ("account", "account"),
        ("product", "product"),
        ("office", "office"),
        ("manager", "manager"),
        ("sector", "sector"),
    ):
        e = entities.first(kind)  # type: ignore[arg-type]
        if e is None or _GROUP_OF_ENTITY.get(kind) == plan.group_by:
            continue
        data[field] = _ref(e) if kind in ("rep", "account", "product") else e.key
    text = masked(message, entities) if message else ""
    series = SERIES_NAMED.search(text)
    if series and series.group(1) not in _NOT_SERIES and plan.group_by != "series":
        data["series"] = series.group(1)
    if NO_ACCOUNT.search(text) and plan.group_by != "account":
        data["has_account"] = False
    stages = stage_filter(message, entities)
    if stages and plan.group_by != "stage":
        data["stages"] = stages
    status: FilterStatus | None = None
    if plan.metric in ("open", "won", "lost", "closed"):
        status = plan.metric  # type: ignore[assignment]
    if plan.metric in ("deal_list", "stuck_deals", "weighted_forecast", "open_pipeline_value"):
        status = plan.list_status if plan.metric == "deal_list" else None
    if status is not None:
        data["status"] = status
    if entities.period is not None:
        start = dt.date.fromisoformat(entities.period.start)
        end = dt.date.fromisoformat(entities.period.end) - dt.timedelta(days=1)
        if plan.date_field == "close":
            data["closed_from"], data["closed_to"] = start, end
        else:
            data["engaged_from"], data["engaged_to"] = start, end
    return DealFilter(**data)  # type: ignore[arg-type]
