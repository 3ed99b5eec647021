"""Questions about the product catalog and the team directory, answered from the CRM by rules (no
LLM): which products make up a series, how many products or series there are, a product's list
price and series, the cheapest / most expensive product (overall or in a series), the total or
average list price of a series or of named products, how two products' list prices compare
(difference, ratio); how many reps there are (in all, per office, per manager), the managers (of
an office) and their number, the manager or office with the largest / smallest team, a rep's
teammates, and the reps with no deal at all.

`is_directory_question(text, entities)` says (pure, no I/O) whether the masked message asks one
of those; `answer_directory(session, message, entities, rep_ids=...)` computes the `Answer`
(template sentence + facts + sources) or returns None. `tools.account_facts.answer_fact` calls
it first, so both crews answer these questions, and the router sends them to a crew by rule
(`graphs.intent._fact_question`).

Questions about deals (counts of deals, revenue, win rate, what sold ...) are never taken: the
deal rules answer those. Names come from the resolved entities (product, rep, manager, office);
a product series ("GTX") is no entity, so it is read from the masked message against the series
the catalog holds, as is a name prefix that several products share ("GTX Plus").

The catalog and the team directory are readable by everyone (as on the REST API). Which reps
have no deals reads the deals, so a caller who reads some reps' deals only (`rep_ids`) is
answered over those reps alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts import Entities, EntityRef, Source
from crm.access import RepIds
from crm.models import Deal, Product, SalesRep
from tools.answers import Answer
from tools.fact_words import ACCOUNT_WORD, COUNTING, DEALS_WORDS, LISTING
from tools.formatting import compared_across, count, count_fact, join_names, money, names_and_more
from tools.query_plan import masked

__all__ = ["answer_directory", "is_directory_question"]


def _rx(p: str) -> re.Pattern[str]:
    return re.compile(p, re.I)


# --- vocabulary (over the masked, lower-case message) -------------------------------------------

PRODUCT_NOUN = _rx(
    r"\b(products?|skus?|offerings?|catalog(ue)?|series|product (lines?|range|famil(y|ies))|"
    r"lines?(?! of business| manager))\b"
)
#: A series (or the series) asked for, not a product's price: "which series is X in".
SERIES_WORD = _rx(r"\b(series|famil(y|ies)|product lines?)\b")
PRICE = _rx(
    r"\b(list ?prices?|prices?|priced|pricing|costs?|costing|cheap\w*|expensive|pric(ie|e)?st|"
    r"pric(e)?y|pricier|msrp|how much (is|are|does|do|would|will)|at list|go(es)? for)\b"
)
AGGREGATE = _rx(r"\b(total|sum|altogether|together|combined|in all|all in|one of each|each of them)\b")
AVERAGE = _rx(r"\b(average|avg|mean)\b")
CHEAPEST = _rx(
    r"\b(cheapest|least (expensive|costly|pricey)|lowest[- ](list )?price\w*|costs? the least|"
    r"(lowest|smallest|minimum) (list )?price)\b"
)
DEAREST = _rx(
    r"\b(most (expensive|costly|pricey)|priciest|dearest|highest[- ](list )?price\w*|"
    r"costs? the most|(highest|largest|biggest|maximum|top) (list )?price|top[- ]priced)\b"
)
RATIO = _rx(r"\b(times|ratio|multiple)\b|\bx as (much|expensive)\b")
COMPARE = _rx(
    r"\b(more|less|cheaper|pricier|costlier|higher|lower|differ\w*|gap|compare\w*|versus|vs|than|"
    r"between|exceed\w*|by how much)\b"
)
LESS = _rx(r"\b(less|cheaper|lower)\b")
SAME_SERIES = _rx(r"\bsame (series|line|family)\b|\bseries as\b")
MEMBERS = _rx(r"\b(consists?|make up|makes up|comprises?|includes?|contains?|belongs?|in the|part of)\b")

REP_NOUN = _rx(
    r"\b(reps?|representatives?|sales ?(agents?|people|persons?|reps?)|agents?|salespeople|"
    r"salespersons?|sellers?|account executives?|team members?|members|people|headcount)\b"
)
#: The reps as a group, asked to be listed or counted ("a sales rep" alone is no such question:
#: "what can you do for a sales rep?"); "people" counts only with an office named.
REPS_PLURAL = _rx(
    r"\b(reps|representatives|sales ?(agents|people|persons|reps)|agents|salespeople|salespersons|"
    r"sellers|account executives|team members|members|headcount)\b"
)
MANAGER_NOUN = _rx(r"\b(managers?|team leads?|supervisors?|bosses)\b|\bwho (manages|runs|leads)\b")
OFFICE_NOUN = _rx(r"\b(offices?|regions?|regional|branch(es)?|territor(y|ies)|hubs?|locations?)\b")
#: "who works in the East office", "who runs the West region": a list of people asked for.
WHO_WORKS = _rx(r"\bwho(?:'s| is| are)? (works?|sells?|manages|runs|leads|in|on|at)\b")
EACH = _rx(r"\b(each|every|per|by|breakdown|broken down|split)\b")
LARGEST = _rx(r"\b(largest|biggest|most|maximum|max)\b")
SMALLEST = _rx(r"\b(smallest|fewest|least|minimum|min)\b")
TEAMMATES = _rx(
    r"\b(team ?mates?|colleagues?|peers?|co-?workers?|same (manager|team|boss|supervisor)|who else|"
    r"others? (on|in) (his|her|their|the same) team|shares? (a |the )?(manager|boss|team))\b"
)
#: A rep with no deal at all ("never been assigned a deal", "without any opportunities"); "no won
#: deals" or "no open deals" qualify the deals, which the deal rules count.
NO_DEALS = _rx(
    r"(\b(no|zero|without( any)?|not a single|not one)\s+(deals?|opportunit(y|ies))\b(\s+at all)?|"
    r"\bnever\s+(been\s+)?(assigned|given|had|got(ten)?|received|owned|handled|worked on)\s+"
    r"(a |an |any )?(single )?(deals?|opportunit(y|ies))\b|"
    r"\b(has|have|had)\s*(n'?t| not)\s+(been\s+)?(assigned|given|had|got(ten)?|received|owned|handled|"
    r"worked on)\s+(a |an |any )?(single )?(deals?|opportunit(y|ies))\b|"
    r"\bnever been assigned\b|\bnot (been )?assigned (a |any )?(deals?|opportunit(y|ies))\b)"
)
#: Deal words beyond `account_facts.DEALS_WORDS`: what was sold and for how much.
MORE_DEAL_WORDS = _rx(
    r"\b(revenue|bookings|close value|closing value|deal size|units|quantity|volume|popular|"
    r"best-?selling|top-?selling|sells|sales (price|value|figures|volume|numbers|amount)|"
    r"average (deal|sale)|performance|performing|engag\w*|prospecting)\b"
)
#: Words of a purchase: deal words unless the question is about the list price ("if a customer
#: bought one of each MG product at list price").
PURCHASE = _rx(r"\b(bought|buys?|buying|purchas\w*|orders?|ordered|paid|pays?|spen[dt])\b")
#: Phrases with deal words that do not ask about deals: "products do we sell", "sales reps".
NEUTRAL = _rx(
    r"\b(do|does|can|could) (we|you|they|i) (sell|offer|carry|have)\b|"
    r"\bsales(?= ?(reps?|agents?|people|persons?|team|teams|managers?|staff|force|org\w*|"
    r"representatives?|directory))"
)
THRESHOLD = _rx(
    r"\b(over|above|under|below|more than|less than|greater than|at least|at most|cheaper than|"
    r"pricier than|exceed\w*|between|within)\s*(\$\s*)?\d|\$\s*\d|\d\s*(k|dollars|usd)\b"
)
LIST_PRICE = _rx(r"\b(list ?prices?|one of each|each of)\b")
NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
QUANTITY = _rx(
    r"\b(\d{1,4}|a|an|one|two|three|four|five|six|seven|eight|nine|ten)\s*(x\s*)?"
    r"((units?|licen[cs]es?|copies|seats?) of )?(the )?<product_ent>"
)


def _about_deals(text: str) -> bool:
    """Whether the masked `text` asks about deals (after the phrases that only look like it)."""
    plain = NEUTRAL.sub(" ", NO_DEALS.sub(" ", text))
    if DEALS_WORDS.search(plain) or MORE_DEAL_WORDS.search(plain):
        return True
    return bool(PURCHASE.search(plain)) and not LIST_PRICE.search(plain)


def _kinds(entities: Entities) -> set[str]:
    return {e.kind for e in entities.items}


def _family(text: str, entities: Entities) -> str | None:
    """Which question of this module the masked `text` asks (see `is_directory_question`)."""
    kinds = _kinds(entities)
    if entities.period is not None or kinds & {"account", "contact", "deal", "sector", "stage"}:
        return None
    # "in the company" is our own company, not an account
    own = re.sub(r"\b(in|at|across|of) (the|our|this) (company|organi[sz]ation|business|firm)\b", " ", text)
    if ACCOUNT_WORD.search(own) and not LIST_PRICE.search(text):
        # accounts / customers are `account_facts`' and the deal rules' ("if a customer bought
        # one of each MG product at list price" is still the catalog's)
        return None
    people = REP_NOUN.search(text) or re.search(r"\b(who|anyone|anybody)\b", text)
    if NO_DEALS.search(text) and people and not kinds & {"product", "rep"} and not _about_deals(text):
        return "no_deals"
    if _about_deals(text):
        return None
    products = len(entities.of("product"))
    if products and kinds & {"rep", "manager", "office"}:
        return None  # "what does Carl Lin charge for GTX Pro": no catalog question
    # "3 GTX Pro and an MG Special": a bill; two products alone are priced one by one
    several = any(n > 1 for n in _quantities(text, [None] * products))
    aggregate = AGGREGATE.search(text) or AVERAGE.search(text)
    if products >= 2 and not aggregate and (COMPARE.search(text) or RATIO.search(text)):
        return "price_compare" if (PRICE.search(text) or RATIO.search(text) or "more" in text) else None
    if PRODUCT_NOUN.search(text) or products:
        if "rep" in kinds or "manager" in kinds or "office" in kinds or THRESHOLD.search(text):
            return None  # a price condition ("listed above $1,000") is not read here
        if (aggregate or several) and (PRICE.search(text) or "one of each" in text):
            return "price_aggregate"
        if CHEAPEST.search(text) or DEAREST.search(text):
            return "price_extreme"
        if products and SAME_SERIES.search(text):
            return "product_list"
        if products and (PRICE.search(text) or SERIES_WORD.search(text)):
            return "product_attr"
        if PRODUCT_NOUN.search(text) and (
            COUNTING.search(text) or LISTING.search(text) or MEMBERS.search(text)
        ):
            return "product_list"
        return None
    return _team_family(text, entities, kinds)


def _team_family(text: str, entities: Entities, kinds: set[str]) -> str | None:
    if "rep" in kinds:
        return "teammates" if TEAMMATES.search(text) else None
    if re.search(r"\b(he|she|him|her|they|them)\b", text):
        return None  # "who manages her?": a follow-up about someone, not the directory
    counting = COUNTING.search(text) or re.search(r"\b(headcount|size)\b", text)
    listing = LISTING.search(text) or WHO_WORKS.search(text)
    asks_group = MANAGER_NOUN.search(text) or OFFICE_NOUN.search(text) or re.search(r"\bteams?\b", text)
    if (
        asks_group
        and (LARGEST.search(text) or SMALLEST.search(text))
        and (REP_NOUN.search(text) or re.search(r"\b(teams?|staff\w*)\b", text) or counting)
    ):
        return "team_extreme"
    if "manager" in kinds:
        return None  # a manager's team: `account_facts` answers it
    if re.search(r"\b(managers|team leads|supervisors|bosses|who (manages|runs|leads))\b", text) and (
        counting or listing
    ):
        return "managers"
    # "people" are the reps only in an office ("how many people have we contacted" is not)
    reps = REPS_PLURAL.search(text) or ("office" in kinds and re.search(r"\bpeople\b", text))
    if (reps and (counting or listing)) or (WHO_WORKS.search(text) and "office" in kinds):
        return "reps"
    if re.search(r"\b(offices|regions|branches|territories)\b", text) and (counting or listing):
        return "offices"
    return None


def is_directory_question(text: str, entities: Entities) -> bool:
    """Whether the masked `text` (`tools.query_plan.masked`) with these `entities` asks about the
    product catalog (series members, counts, list prices, cheapest / dearest, totals, averages,
    comparisons) or the team directory (rep and manager counts and lists, largest team,
    teammates, reps with no deal) and not about deals. Pure: no I/O."""
    return _family(text, entities) is not None


# --- the catalog ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Product:
    id: int
    name: str
    series: str | None
    price: Decimal | None


@dataclass(frozen=True)
class _Group:
    """Products the message names as a group: a series ("the GTX series") or a name prefix
    several products share ("GTX Plus")."""

    label: str  # "the GTX series" | "the GTX Plus products"
    products: list[_Product]
    series: str | None


def _catalog(session: Session) -> list[_Product]:
    rows = session.execute(
        select(Product.id, Product.name, Product.series, Product.list_price).order_by(
            func.lower(Product.name), Product.id
        )
    ).all()
    return [_Product(r.id, r.name, r.series, r.list_price) for r in rows]


def _words_in(phrase: str, text: str) -> bool:
    return re.search(rf"(?<![\w<]){re.escape(phrase.lower())}(?![\w>])", text) is not None


def _groups(text: str, catalog: list[_Product]) -> list[_Group]:
    """The series and name prefixes the masked `text` names, longest first; a series whose words
    are only part of a named prefix ("GTX" of "GTX Plus") is not counted."""
    prefixes: dict[str, list[_Product]] = {}
    for p in catalog:
        words = p.name.split()
        for k in range(2, len(words)):
            prefixes.setdefault(" ".join(words[:k]), []).append(p)
    found: list[_Group] = []
    rest = text
    for prefix in sorted(prefixes, key=len, reverse=True):
        members = prefixes[prefix]
        series = {p.series for p in members}
        if (
            len(members) >= 2
            and _words_in(prefix, rest)
            and prefix.lower() not in {(s or "").lower() for s in series}
        ):
            found.append(_Group(f"the {prefix} products", members, None))
            rest = re.sub(re.escape(prefix.lower()), " ", rest)
    for series_name in sorted({p.series for p in catalog if p.series}, key=len, reverse=True):
        if _words_in(series_name, rest):
            members = [p for p in catalog if p.series == series_name]
            found.append(_Group(f"the {series_name} series", members, series_name))
    return found


def _named_products(message: str, entities: Entities, catalog: list[_Product]) -> list[_Product]:
    """The products the entities name, in the order the message names them."""
    by_id = {p.id: p for p in catalog}
    by_name = {p.name.lower(): p for p in catalog}
    low = message.lower()

    def position(e: EntityRef) -> int:
        for w in (e.mention, e.key):
            if w and w.lower() in low:
                return low.index(w.lower())
        return len(low)

    out: list[_Product] = []
    for e in sorted(entities.of("product"), key=position):
        p = by_id.get(e.id) if e.id is not None else None
        p = p or by_name.get(e.key.lower())
        if p is not None and p not in out:
            out.append(p)
    return out


def _source(p: _Product) -> Source:
    price = float(p.price) if p.price is not None else None
    return Source(kind="product", id=str(p.id), label=p.name, data={"series": p.series, "list_price": price})


def _fact(p: _Product) -> dict[str, Any]:
    return {
        "product": p.name,
        "series": p.series,
        "list_price": float(p.price) if p.price is not None else None,
    }


def _priced(p: _Product) -> str:
    return f"{p.name} ({money(float(p.price))})" if p.price is not None else f"{p.name} (no list price)"


def _cents(v: Decimal) -> float:
    return float(v.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _scope(text: str, entities: Entities, message: str, catalog: list[_Product]) -> _Group:
    """The products a question is about: the series / prefixes it names, the series of a named
    product ("same series as GTX Pro"), or the whole catalog."""
    groups = _groups(text, catalog)
    if len(groups) == 1:
        return groups[0]
    if groups:
        members = [p for p in catalog if any(p in g.products for g in groups)]
        labels = [g.label.removeprefix("the ").removesuffix(" series") for g in groups]
        return _Group(f"the {join_names(labels)} series", members, None)
    named = _named_products(message, entities, catalog)
    if named and SAME_SERIES.search(text) and named[0].series:
        series = named[0].series
        return _Group(f"the {series} series", [p for p in catalog if p.series == series], series)
    return _Group("the catalog", catalog, None)


def _product_list(session: Session, text: str, message: str, entities: Entities) -> Answer | None:
    catalog = _catalog(session)
    groups = _groups(text, catalog)
    if not groups and SERIES_WORD.search(text) and not entities.of("product"):
        # "how many product series do we have": the series themselves
        series = sorted({p.series for p in catalog if p.series})
        sizes = {s: sum(1 for p in catalog if p.series == s) for s in series}
        facts: list[dict[str, Any]] = [{"series_count": len(series), "series": series}]
        facts += [{"series": s, "products": n} for s, n in sizes.items()]
        if not series:
            return Answer("The catalog has no product series.", facts, [], key_figures=[])
        items = join_names([f"{s} ({count(sizes[s], 'product')})" for s in series])
        draft = f"We have {count(len(series), 'product series')}: {items}."
        return Answer(
            draft, facts, [_source(p) for p in catalog], names=series, key_figures=[str(len(series))]
        )
    scope = _scope(text, entities, message, catalog)
    members = scope.products
    facts = [{"scope": scope.label, "products": len(members)}, *(_fact(p) for p in members)]
    sources = [_source(p) for p in members]
    names = [p.name for p in members]
    listed = join_names([_priced(p) for p in members])
    if scope.series is None and scope.label == "the catalog":
        series = sorted({p.series for p in members if p.series})
        facts[0]["series_count"] = len(series)
        if not members:
            return Answer("The catalog has no products yet.", facts, [], key_figures=[])
        draft = f"We have {count(len(members), 'product')} in {count(len(series), 'series')}: {listed}."
        return Answer(draft, facts, sources, names=names, key_figures=[str(len(members))])
    if scope.series is not None:
        draft = f"The {scope.series} series has {count(len(members), 'product')}: {listed}."
    else:
        noun = scope.label.removeprefix("the ").removesuffix(" products")
        verb = "is" if len(members) == 1 else "are"
        draft = f"There {verb} {count(len(members), noun + ' product')}: {listed}."
    return Answer(draft, facts, sources, names=names, key_figures=[str(len(members))])


def _product_attr(session: Session, message: str, entities: Entities) -> Answer | None:
    named = _named_products(message, entities, _catalog(session))
    if not named:
        return None
    facts = [_fact(p) for p in named]
    sources = [_source(p) for p in named]

    def one(p: _Product) -> str:
        series = f"in the {p.series} series" if p.series else "in no series"
        price = f"a list price of {money(float(p.price))}" if p.price is not None else "no list price"
        return f"{p.name} is {series}, with {price}"

    draft = "; ".join(one(p) for p in named) + "."
    figures = [money(float(p.price)) for p in named if p.price is not None]
    return Answer(draft, facts, sources, names=[p.name for p in named], key_figures=figures)


def _price_extreme(session: Session, text: str, message: str, entities: Entities) -> Answer | None:
    catalog = _catalog(session)
    scope = _scope(text, entities, message, catalog)
    priced = [p for p in scope.products if p.price is not None]
    where = "" if scope.label == "the catalog" else f" in {scope.label}"
    if not priced:
        return Answer(
            f"No product{where} has a list price in the CRM.", [{"scope": scope.label}], [], key_figures=[]
        )
    parts: list[str] = []
    facts: list[dict[str, Any]] = [{"scope": scope.label, "products_compared": len(priced)}]
    names: list[str] = []
    sources: list[Source] = []
    wanted = [("cheapest", min)] if CHEAPEST.search(text) else []
    if DEAREST.search(text):
        wanted.append(("most expensive", max))
    for label, pick in wanted:
        price = pick(p.price for p in priced if p.price is not None)
        top = [p for p in priced if p.price == price]
        facts.append({label.replace(" ", "_"): [p.name for p in top], "list_price": float(price)})
        names += [p.name for p in top]
        sources += [_source(p) for p in top]
        noun = "product" if not parts else ""  # "the cheapest product ... and the most expensive is"
        if len(top) == 1:
            parts.append(
                f"the {label} {noun}{where if noun else ''} is {top[0].name} ({money(float(price))})"
            )
        else:
            tied = join_names([p.name for p in top])
            parts.append(
                f"the {label} {noun}s{where if noun else ''} are {tied} ({money(float(price))} each)"
            )
    across = compared_across(len(priced), "product")
    facts += across.facts
    body = " and ".join(parts).replace("  ", " ").replace(" s ", " ones ")
    first = f"{body[0].upper()}{body[1:]}."
    return Answer(f"{first} {across.text}", facts, sources, names=names, key_figures=[first])


def _quantities(text: str, named: list[Any]) -> list[int]:
    """How many of each named product the masked `text` asks for ("3 GTX Pro and an MG Special"):
    the n-th `<product_ent>` is the n-th named product; 1 where no number precedes it."""
    qty = [1] * len(named)
    slots = [m.start() for m in re.finditer(r"<product_ent>", text)]
    for m in QUANTITY.finditer(text):
        end = m.end() - len("<product_ent>")
        if end in slots and slots.index(end) < len(qty):
            word = m.group(1).lower()
            qty[slots.index(end)] = int(word) if word.isdigit() else NUMBER_WORDS[word]
    return qty


def _price_aggregate(session: Session, text: str, message: str, entities: Entities) -> Answer | None:
    catalog = _catalog(session)
    named = _named_products(message, entities, catalog)
    average = AVERAGE.search(text) is not None
    if named and not _groups(text, catalog):
        qty = _quantities(text, named) if not average else [1] * len(named)
        label = None
        items = list(zip(named, qty, strict=True))
    else:
        scope = _scope(text, entities, message, catalog)
        label = scope.label
        items = [(p, 1) for p in scope.products]
    missing = [p.name for p, _ in items if p.price is None]
    priced = [(p, n) for p, n in items if p.price is not None]
    facts: list[dict[str, Any]] = [_fact(p) | {"quantity": n} for p, n in items]
    sources = [_source(p) for p, _ in items]
    if not priced:
        return Answer("None of those products has a list price in the CRM.", facts, sources, key_figures=[])
    where = "" if label in (None, "the catalog") else f" in {label}"
    units = sum(n for _, n in priced)
    total = sum((p.price * n for p, n in priced if p.price is not None), Decimal(0))

    def item(p: _Product, n: int) -> str:
        return f"{n} × {_priced(p)}" if n > 1 else _priced(p)

    listed = join_names([item(p, n) for p, n in priced])
    tail = f" ({join_names(missing)} has no list price)" if missing else ""
    if average:
        mean = _cents(total / len(priced))
        facts.append({"metric": "average_list_price", "value": mean, "products": len(priced)})
        products = count(len(priced), "product")
        draft = f"The average list price of the {products}{where} is {money(mean)}: {listed}{tail}."
        figure = money(mean)
    else:
        facts.append({"metric": "total_list_price", "value": _cents(total), "units": units})
        if label is None:
            draft = f"At list price, {listed} come to {money(_cents(total))} in total{tail}."
        else:
            draft = (
                f"One of each of the {count(len(priced), 'product')}{where} comes to "
                f"{money(_cents(total))} at list price: {listed}{tail}."
            )
        figure = money(_cents(total))
    return Answer(draft, facts, sources, names=[p.name for p, _ in priced], key_figures=[figure])


def _price_compare(session: Session, text: str, message: str, entities: Entities) -> Answer | None:
    named = _named_products(message, entities, _catalog(session))
    if len(named) < 2:
        return None
    a, b = named[0], named[1]
    facts: list[dict[str, Any]] = [_fact(a), _fact(b)]
    sources = [_source(a), _source(b)]
    if a.price is None or b.price is None:
        lacking = a.name if a.price is None else b.name
        return Answer(f"The CRM has no list price for {lacking}.", facts, sources, key_figures=[])
    dear, cheap = (a, b) if a.price >= b.price else (b, a)
    assert dear.price is not None and cheap.price is not None
    if RATIO.search(text):
        if cheap.price == 0:
            draft = f"{cheap.name} has a list price of $0, so no ratio can be computed."
            return Answer(draft, facts, sources, key_figures=[])
        ratio = float((dear.price / cheap.price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        facts.append({"metric": "price_ratio", "value": ratio, "of": dear.name, "to": cheap.name})
        draft = f"{_priced(dear)} costs {ratio:.2f} times as much as {_priced(cheap)}."
        return Answer(draft, facts, sources, names=[dear.name, cheap.name], key_figures=[f"{ratio:.2f}"])
    diff = _cents(dear.price - cheap.price)
    facts.append({"metric": "price_difference", "value": diff, "of": dear.name, "to": cheap.name})
    if diff == 0:
        draft = f"{a.name} and {b.name} have the same list price, {money(float(a.price))}."
    elif LESS.search(text) and not re.search(r"\bmore\b", text):
        draft = f"{_priced(cheap)} costs {money(diff)} less than {_priced(dear)}."
    else:
        draft = f"{_priced(dear)} costs {money(diff)} more than {_priced(cheap)}."
    return Answer(draft, facts, sources, names=[dear.name, cheap.name], key_figures=[money(diff)])


# --- the team directory -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rep:
    id: int
    name: str
    manager: str | None
    office: str | None
    deals: int


def _reps(session: Session, office: str | None = None, manager: str | None = None) -> list[_Rep]:
    """Reps (of an office / a manager, case-insensitive) with their number of deals, by name."""
    deals = func.count(Deal.id)
    stmt = (
        select(SalesRep.id, SalesRep.name, SalesRep.manager, SalesRep.regional_office, deals)
        .outerjoin(Deal, Deal.rep_id == SalesRep.id)
        .group_by(SalesRep.id)
        .order_by(func.lower(SalesRep.name), SalesRep.id)
    )
    if office is not None:
        stmt = stmt.where(func.lower(SalesRep.regional_office) == office.strip().lower())
    if manager is not None:
        stmt = stmt.where(func.lower(SalesRep.manager) == manager.strip().lower())
    return [_Rep(r[0], r[1], r[2], r[3], int(r[4])) for r in session.execute(stmt).all()]


def _rep_source(r: _Rep) -> Source:
    return Source(
        kind="rep", id=str(r.id), label=r.name, data={"manager": r.manager, "regional_office": r.office}
    )


def _by(reps: list[_Rep], key: str) -> dict[str, list[_Rep]]:
    out: dict[str, list[_Rep]] = {}
    for r in reps:
        value = r.manager if key == "manager" else r.office
        if value:
            out.setdefault(value, []).append(r)
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def _office(entities: Entities) -> str | None:
    e = entities.first("office")
    return e.key if e is not None else None


def _reps_answer(session: Session, text: str, entities: Entities) -> Answer:
    office = _office(entities)
    reps = _reps(session, office=office)
    names = [r.name for r in reps]
    if office is None and EACH.search(text) and (MANAGER_NOUN.search(text) or OFFICE_NOUN.search(text)):
        key = "manager" if MANAGER_NOUN.search(text) else "office"
        groups = _by(reps, key)
        facts: list[dict[str, Any]] = [{"reps": len(reps)}]
        facts += [{key: g, "reps": len(rs)} for g, rs in groups.items()]
        items = join_names([f"{g} {len(rs)}" for g, rs in groups.items()])
        noun = "manager" if key == "manager" else "regional office"
        draft = f"Sales reps per {noun}: {items} ({len(reps):,} in total)."
        return Answer(draft, facts, [], names=list(groups), key_figures=[str(len(reps))])
    listed = names_and_more(names, 12)
    facts = [{"office": office, "reps": len(reps), "names": names}, *listed.facts]
    sources = [_rep_source(r) for r in reps[:12]]
    if office is not None:
        if not reps:
            return Answer(f"The CRM has no sales reps in the {office} office.", facts, [], key_figures=[])
        draft = f"The {office} office has {count(len(reps), 'sales rep')}: {listed.text}."
        return Answer(draft, facts, sources, names=names[:12], key_figures=[str(len(reps))])
    offices = _by(reps, "office")
    facts += [{"office": o, "reps": len(rs)} for o, rs in offices.items()]
    per = join_names([f"{o} {len(rs)}" for o, rs in offices.items()])
    where = f" ({per})" if offices else ""
    draft = f"We have {count(len(reps), 'sales rep')}{where}: {listed.text}."
    return Answer(draft, facts, sources, names=names[:12], key_figures=[str(len(reps))])


def _managers_answer(session: Session, text: str, entities: Entities) -> Answer:
    office = _office(entities)
    reps = _reps(session, office=office)
    teams = _by(reps, "manager")
    managers = list(teams)
    if office is None and EACH.search(text) and OFFICE_NOUN.search(text):
        offices = {o: sorted({r.manager for r in rs if r.manager}) for o, rs in _by(reps, "office").items()}
        facts: list[dict[str, Any]] = [{"managers": len(managers)}]
        facts += [{"office": o, "managers": len(ms), "names": ms} for o, ms in offices.items()]
        items = "; ".join(f"{o} {len(ms)} ({join_names(ms)})" for o, ms in offices.items())
        draft = f"Managers per regional office: {items}."
        return Answer(draft, facts, [], names=managers, key_figures=[str(len(managers))])
    facts = [{"office": office, "managers": len(managers), "names": managers}]
    facts += [{"manager": m, "reps": len(rs)} for m, rs in teams.items()]
    sources = [
        Source(kind="manager", id=m, label=m, data={"team": [r.name for r in rs]}) for m, rs in teams.items()
    ]
    where = f" in the {office} office" if office else ""
    if not managers:
        return Answer(f"The CRM has no managers{where}.", facts, [], key_figures=[])
    items = join_names([f"{m} ({count(len(rs), 'rep')})" for m, rs in teams.items()])
    verb = "is" if len(managers) == 1 else "are"
    draft = f"There {verb} {count(len(managers), 'manager')}{where}: {items}."
    return Answer(draft, facts, sources, names=managers, key_figures=[str(len(managers))])


def _offices_answer(session: Session) -> Answer:
    reps = _reps(session)
    offices = _by(reps, "office")
    facts: list[dict[str, Any]] = [{"offices": len(offices), "names": list(offices)}]
    facts += [
        {"office": o, "reps": len(rs), "managers": len({r.manager for r in rs if r.manager})}
        for o, rs in offices.items()
    ]
    if not offices:
        return Answer("The CRM has no regional offices.", facts, [], key_figures=[])
    items = join_names([f"{o} ({count(len(rs), 'rep')})" for o, rs in offices.items()])
    draft = f"We have {count(len(offices), 'regional office')}: {items}."
    return Answer(draft, facts, [], names=list(offices), key_figures=[str(len(offices))])


def _team_extreme(session: Session, text: str, entities: Entities) -> Answer | None:
    office = _office(entities)
    reps = _reps(session, office=office)
    key = (
        "office"
        if OFFICE_NOUN.search(text) and not MANAGER_NOUN.search(text) and office is None
        else "manager"
    )
    groups = _by(reps, key)
    if not groups:
        return None
    sizes = {g: len(rs) for g, rs in groups.items()}
    facts: list[dict[str, Any]] = [{key: g, "reps": n} for g, n in sizes.items()]
    parts: list[str] = []
    names: list[str] = []
    wanted = [("largest", max)] if LARGEST.search(text) or not SMALLEST.search(text) else []
    if SMALLEST.search(text):
        wanted.append(("smallest", min))
    noun = "manager" if key == "manager" else "office"
    for label, pick in wanted:
        size = pick(sizes.values())
        top = [g for g, n in sizes.items() if n == size]
        names += top
        most = "most" if label == "largest" else "fewest"
        if len(top) == 1 and key == "manager":
            parts.append(f"the {label} team is {top[0]}'s, with {count(size, 'sales rep')}")
        elif len(top) == 1:
            parts.append(f"the {top[0]} office has the {most} sales reps, {size:,}")
        else:
            facts.append(count_fact(f"{noun}s_tied_{label}", len(top)))
            if key == "manager":
                each = count(size, "sales rep")
                parts.append(f"{len(top)} managers share the {label} team, {each} each: {join_names(top)}")
            else:
                parts.append(f"the {join_names(top)} offices have the {most} sales reps, {size:,} each")
    across = compared_across(len(sizes), noun)
    facts += across.facts
    body = "; ".join(parts)
    first = f"In the {office} office, {body}." if office else f"{body[0].upper()}{body[1:]}."
    return Answer(f"{first} {across.text}", facts, [], names=names, key_figures=[first])


def _teammates(session: Session, entities: Entities) -> Answer | None:
    e = entities.first("rep")
    assert e is not None
    match = select(SalesRep).where(SalesRep.id == e.id) if e.id is not None else None
    row = session.scalars(match).first() if match is not None else None
    if row is None:
        row = session.scalars(select(SalesRep).where(func.lower(SalesRep.name) == e.key.lower())).first()
    if row is None:
        return None
    src = Source(
        kind="rep",
        id=str(row.id),
        label=row.name,
        data={"manager": row.manager, "regional_office": row.regional_office},
    )
    if not row.manager:
        facts: list[dict[str, Any]] = [{"rep": row.name, "manager": None, "teammates": []}]
        return Answer(
            f"The CRM has no manager for {row.name}, so no teammates.", facts, [src], key_figures=[]
        )
    mates = [r for r in _reps(session, manager=row.manager) if r.id != row.id]
    names = [r.name for r in mates]
    facts = [
        {"rep": row.name, "manager": row.manager, "regional_office": row.regional_office, "teammates": names},
        count_fact("teammates", len(names)),
    ]
    if not mates:
        draft = f"{row.name} is the only rep in {row.manager}'s team: no teammates."
        return Answer(draft, facts, [src], names=[row.manager], key_figures=[])
    draft = f"{row.name} has {count(len(mates), 'teammate')} under {row.manager}: {join_names(names)}."
    return Answer(
        draft, facts, [src, *(_rep_source(r) for r in mates)], names=names, key_figures=[str(len(mates))]
    )


def _no_deals(session: Session, entities: Entities, rep_ids: RepIds) -> Answer:
    office = _office(entities)
    manager = entities.first("manager")
    reps = _reps(session, office=office, manager=manager.key if manager else None)
    if rep_ids is not None:
        reps = [r for r in reps if r.id in rep_ids]  # another rep's deals are not the caller's to read
    idle = [r for r in reps if r.deals == 0]
    names = [r.name for r in idle]
    if manager is not None:
        scope = f"{manager.key}'s {count(len(reps), 'rep')}"
    elif office is not None:
        scope = f"the {count(len(reps), 'rep')} in the {office} office"
    else:
        scope = f"the {count(len(reps), 'sales rep')}"
    if rep_ids is not None:
        scope += " whose deals you can see"
    facts: list[dict[str, Any]] = [
        {"scope": scope, "reps": len(reps), "reps_without_deals": len(idle), "names": names},
        *({"rep": r.name, "manager": r.manager, "regional_office": r.office, "deals": 0} for r in idle),
    ]
    sources = [_rep_source(r) for r in idle]
    if not reps:
        return Answer(f"There are no reps in {scope.removeprefix('the ')}.", facts, [], key_figures=[])
    if not idle:
        return Answer(f"Every one of {scope} has at least one deal.", facts, [], key_figures=[])

    def who(r: _Rep) -> str:
        extra = [
            x for x in (r.manager if manager is None else None, r.office if office is None else None) if x
        ]
        return f"{r.name} ({', '.join(extra)})" if extra else r.name

    verb = "has" if len(idle) == 1 else "have"
    draft = f"Of {scope}, {len(idle):,} {verb} no deals at all: {join_names([who(r) for r in idle])}."
    return Answer(draft, facts, sources, names=names, key_figures=[str(len(idle))])


def answer_directory(
    session: Session, message: str, entities: Entities, *, rep_ids: RepIds = None
) -> Answer | None:
    """The answer to a product-catalog or team-directory question (see the module docstring), or
    None when `message` is not one. `rep_ids`: whose deals the caller reads (None: all), for
    the reps with no deals. Reads only; raises nothing of its own (database errors propagate)."""
    text = masked(message, entities)
    family = _family(text, entities)
    if family == "product_list":
        return _product_list(session, text, message, entities)
    if family == "product_attr":
        return _product_attr(session, message, entities)
    if family == "price_extreme":
        return _price_extreme(session, text, message, entities)
    if family == "price_aggregate":
        return _price_aggregate(session, text, message, entities)
    if family == "price_compare":
        return _price_compare(session, text, message, entities)
    if family == "reps":
        return _reps_answer(session, text, entities)
    if family == "managers":
        return _managers_answer(session, text, entities)
    if family == "offices":
        return _offices_answer(session)
    if family == "team_extreme":
        return _team_extreme(session, text, entities)
    if family == "teammates":
        return _teammates(session, entities)
    if family == "no_deals":
        return _no_deals(session, entities, rep_ids)
    return None
