"""Deterministic entity resolution for the chat (no LLM): which CRM records and which period a
rep's message names, plus what a follow-up ("and his manager?", "what about them?") refers to.

`resolve_entities(session, message, previous)` scans the message against the CRM's name index
(`crm.names.NameIndex`: account, rep, manager, contact and product names; regional offices;
sectors; pipeline stages; deal external ids), cached per database by `tools.names.name_index`
and rebuilt when the CRM changes, and parses a period ("March 2017", "Q1 2017", "this quarter",
"last month", "next month", "in 2017", "last 90 days") relative to the data's reference date
(`tools.analytics.reference_date`: the Maven export ends 2017-12-31, so "this quarter" is Q4 2017).

Matching rules (why: a 1.5B model downstream cannot be trusted to spell names right, so names
are settled here):
- case-insensitive, punctuation- and space-insensitive ("xx holding" = "Xx-holding",
  "gtxpro" = "GTX Pro"); possessives are dropped ("Kami Bicknell's"); longest match wins
  ("GTX Plus Pro" before "GTX Pro").
- a single token of a longer name (a rep's first or last name, "Acme" for "Acme Corporation")
  counts only when it belongs to one record, and, if it is also an everyday word ("Summer",
  "Violet", "Umbrella"), only when written with a capital letter and not as the first word.
- offices, sectors and stages are ordinary words, so they need context: "West office",
  "software sector", "retail accounts", "in the engaging stage", "move ... to negotiation".
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from contracts import Entities, EntityRef, Period
from crm.names import STOP_WORDS, NameIndex, NameTarget, Token, tokenize
from tools.analytics import reference_date
from tools.names import name_index

__all__ = ["find_entities", "is_follow_up", "parse_period", "resolve_entities"]

# --------------------------------------------------------------------------------------------
# vocabulary
# --------------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Everyday words that are also first names, surnames or name parts in CRMs: alone they count as
#: a name only when capitalised mid-sentence. Seasons, months, colours, plants, common nouns.
_COMMON = _words(
    """summer winter spring autumn fall violet rose rosie lily daisy iris ivy holly hazel heather
    jasmine olive pearl ruby amber jade coral dawn faith grace hope joy patience charity reed
    carol mark bill will may june april august grant chase dean drew gene guy jack jean ray rich
    rob sue ted tom van hunter cook baker smith king young green white brown black gray grey wood
    hill ford levy cress kinder clapper johns lane page park rice rush stone street wells west
    east north south central cheers umbrella massive dynamic plus golden silver star sun sky
    fast best good great happy lucky sharp strong swift bright early long short little big
    mason miles price sales summit frank frost glen joy major marsh moon mar"""
)

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_FULL_MONTHS = frozenset(name.lower() for name in calendar.month_name if name)

_OFFICE_CONTEXT = frozenset({"office", "offices", "region", "regional", "team", "branch", "territory"})
_SECTOR_CONTEXT = _words(
    """sector sectors industry industries vertical verticals space market accounts account
    companies company customers customer clients client firms businesses prospects"""
)
_STAGE_BEFORE = frozenset({"to", "in", "into", "as", "at", "from"})
_STAGE_AFTER = frozenset(
    {"stage", "stages", "deals", "deal", "opportunities", "opportunity", "phase", "pipeline"}
)

_REFERENCE_NOUNS = _words(
    """account accounts deal deals opportunity opportunities rep reps agent customer client
    company companies one ones guy person team product manager office"""
)
_PRONOUNS = frozenset(
    {"he", "him", "his", "she", "her", "hers", "they", "them", "their", "theirs", "it", "its"}
)
_DEMONSTRATIVES = _words("that this those these same")
_MANAGER_WORDS = _words("manager managers manages managed boss supervisor")
_OFFICE_WORDS = frozenset({"office", "region", "regional", "territory"})

#: A word that may be a deal's external id (the index says whether it is one).
_DEAL_ID_CANDIDATE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,}[A-Za-z0-9]")


# --------------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------------


def find_entities(index: NameIndex, message: str) -> list[EntityRef]:
    """The records `message` names (module docstring for the rules), in order of appearance,
    each once; `mention` is the words used."""
    toks = tokenize(message)
    found: list[EntityRef] = []
    seen: set[tuple[str, str]] = set()

    def add(ref: EntityRef) -> None:
        if (ref.kind, ref.key) not in seen:
            seen.add((ref.kind, ref.key))
            found.append(ref)

    i = 0
    while i < len(toks):
        step = 1
        for n in range(min(index.max_tokens, len(toks) - i), 0, -1):
            targets = index.targets(toks[i : i + n])
            if not targets:
                continue
            accepted = [t for t in targets if _accept(t, toks, i, n)]
            if not accepted:
                continue
            mention = message[toks[i].start : toks[i + n - 1].end]
            for t in accepted:
                add(EntityRef(kind=t.kind, key=t.key, id=t.id, mention=mention))
            step = n
            break
        i += step
    for m in _DEAL_ID_CANDIDATE.finditer(message):
        hit = index.deal(m.group())
        if hit is not None:
            add(EntityRef(kind="deal", key=hit[0], id=hit[1], mention=m.group()))
    return found


def _accept(t: NameTarget, toks: Sequence[Token], i: int, n: int) -> bool:
    """Whether the words `toks[i:i+n]` name `t` here (context words, capitals)."""
    first = toks[i]
    if t.context:
        before = toks[i - 1].norm if i > 0 else ""
        after = [x.norm for x in toks[i + n : i + n + 2]]
        if t.kind == "office":
            return bool(after and after[0] in _OFFICE_CONTEXT) or (first.capital and i > 0)
        if t.kind == "sector":
            return any(a in _SECTOR_CONTEXT for a in after) or before in {"in", "from"}
        # stage: unambiguous stage words anywhere, ordinary words in context
        if first.norm in ("prospecting", "engaging"):
            return True
        return before in _STAGE_BEFORE or bool(after and after[0] in _STAGE_AFTER)
    if n == 1 and (t.partial or first.norm in _COMMON):
        if first.norm in _COMMON or first.norm in STOP_WORDS:
            return first.capital and i > 0
        return True
    return True


# --------------------------------------------------------------------------------------------
# periods
# --------------------------------------------------------------------------------------------


def _month_range(year: int, month: int) -> tuple[dt.date, dt.date]:
    start = dt.date(year, month, 1)
    end = dt.date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def _add_months(d: dt.date, months: int) -> dt.date:
    m = d.month - 1 + months
    return dt.date(d.year + m // 12, m % 12 + 1, 1)


def _quarter_range(year: int, q: int) -> tuple[dt.date, dt.date]:
    start = dt.date(year, 3 * (q - 1) + 1, 1)
    return start, _add_months(start, 3)


def _period(start: dt.date, end: dt.date, label: str) -> Period:
    return Period(start=start.isoformat(), end=end.isoformat(), label=label)


def _year_of(tok: str) -> int | None:
    if re.fullmatch(r"(19|20)\d\d", tok):
        return int(tok)
    return None


_ORDINAL_Q = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "last": 4,
}
_SHIFTS = {"this": 0, "current": 0, "last": -1, "previous": -1, "prior": -1, "past": -1, "next": 1}
_MONTH_PREPS = _words("in during for of since until through from by last this next")
_YEAR_PREPS = _words("in during for of since from fy year through about and")
_UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 30, "months": 30, "year": 365, "years": 365}
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "twelve": 12, "a": 1}  # fmt: skip


def parse_period(message: str, today: dt.date) -> Period | None:
    """The date range `message` names, relative to `today`, or None.

    Understands: "March 2017", "Mar 2017", "in March" (latest March not after `today`), "Q1 2017",
    "2017 Q1", "Q3" (of `today`'s year), "first quarter of 2017", "first half of 2017", "H2 2017",
    "in 2017", "this/last/next
    month|quarter|year|week", "today", "yesterday", "year to date", "last 90 days", "past 3
    months", "since March 2017" (to `today` inclusive). Several ranges ("from March to May 2017")
    give the span from the first start to the last end. End dates are exclusive.
    """
    toks = tokenize(message)
    words = [t.norm for t in toks]
    found: list[tuple[dt.date, dt.date, str]] = []
    used: set[int] = set()

    def year_near(i: int) -> int | None:
        """A year written right after token i ("March 2017", "Q1 of 2017", "March '17")."""
        j = i + 1
        if j < len(words) and words[j] == "of":
            j += 1
        if j < len(words):
            y = _year_of(words[j])
            if y is not None:
                used.add(j)
                return y
            if re.fullmatch(r"\d\d", words[j]) and toks[j].start > 0 and message[toks[j].start - 1] in "'’":
                used.add(j)
                return 2000 + int(words[j])
        return None

    for i, w in enumerate(words):
        if i in used:
            continue
        prev = words[i - 1] if i > 0 else ""
        # --- months -------------------------------------------------------------------------
        if w in _MONTHS:
            y = year_near(i)
            month = _MONTHS[w]
            if y is None:
                prep = prev in _MONTH_PREPS
                if w not in _FULL_MONTHS or not prep or (w in ("may", "march") and not toks[i].capital):
                    continue
                if prev == "next":
                    y = today.year + (month <= today.month)
                elif prev == "this":
                    y = today.year
                else:
                    y = today.year - (month > today.month)
            start, end = _month_range(y, month)
            found.append((start, end, f"{calendar.month_name[month]} {y}"))
            continue
        # --- halves: "first half of 2017", "H2 2017", "second half" (of today's year) ---------
        half = 1 if w == "h1" else 2 if w == "h2" else None
        if half is None and w == "half" and prev in ("first", "second"):
            half = 1 if prev == "first" else 2
        if half is not None:
            y = year_near(i)
            if y is None and i > 0 and _year_of(prev) is not None:
                y = _year_of(prev)
            if y is None:
                y = today.year
            start = dt.date(y, 1 + 6 * (half - 1), 1)
            found.append((start, _add_months(start, 6), f"{'first' if half == 1 else 'second'} half of {y}"))
            continue
        # --- quarters ------------------------------------------------------------------------
        m = re.fullmatch(r"q([1-4])", w)
        q: int | None = int(m.group(1)) if m else None
        if q is None and w in ("quarter", "qtr") and prev in _ORDINAL_Q:
            q = _ORDINAL_Q[prev]
        if q is not None:
            y = year_near(i)
            if y is None and i > 0 and _year_of(prev) is not None:
                y = _year_of(prev)
            if y is None:
                y = today.year
            start, end = _quarter_range(y, q)
            found.append((start, end, f"Q{q} {y}"))
            continue
        # --- relative ranges -------------------------------------------------------------------
        if w in _SHIFTS and i + 1 < len(words):
            unit = words[i + 1]
            shift = _SHIFTS[w]
            rng = _relative(unit, shift, today)
            if unit == "quarter" and w == "last" and (y_q := year_near(i + 1)) is not None:
                rng = _quarter_range(y_q, 4)  # "the last quarter of 2017"
            if rng is not None:
                used.add(i + 1)
                found.append((*rng, f"{w} {unit} ({_label(*rng)})"))
                continue
            # "last 90 days", "past three months", "next 2 weeks"
            if i + 2 < len(words) and words[i + 2] in _UNITS:
                n_txt = unit
                n = int(n_txt) if n_txt.isdigit() else _NUMBER_WORDS.get(n_txt)
                if n is not None and 0 < n < 10_000:
                    days = n * _UNITS[words[i + 2]]
                    if shift >= 0 and w == "next":
                        start, end = today + dt.timedelta(days=1), today + dt.timedelta(days=days + 1)
                    else:
                        start, end = today - dt.timedelta(days=days - 1), today + dt.timedelta(days=1)
                    used.update({i + 1, i + 2})
                    found.append((start, end, f"{w} {n_txt} {words[i + 2]} ({_label(start, end)})"))
                    continue
        if w == "today" or (w == "this" and i + 1 < len(words) and words[i + 1] in ("morning", "afternoon")):
            found.append((today, today + dt.timedelta(days=1), f"today ({today.isoformat()})"))
            continue
        if w == "yesterday":
            y_day = today - dt.timedelta(days=1)
            found.append((y_day, today, f"yesterday ({y_day.isoformat()})"))
            continue
        if w == "ytd" or (w == "year" and words[i + 1 : i + 3] == ["to", "date"]):
            start = dt.date(today.year, 1, 1)
            found.append((start, today + dt.timedelta(days=1), f"year to date ({today.year})"))
            continue
        # --- a bare year: "in 2017", "during 2016", "2017's" ---------------------------------
        y = _year_of(w)
        if i + 1 < len(words) and re.fullmatch(r"q[1-4]", words[i + 1]):
            continue  # "2017 Q1": the quarter takes the year
        if y is not None and prev in _YEAR_PREPS:
            found.append((dt.date(y, 1, 1), dt.date(y + 1, 1, 1), str(y)))
            continue

    if not found:
        return None
    if "since" in words and len(found) == 1:
        start, _end, label = found[0]
        return _period(start, today + dt.timedelta(days=1), f"since {label}")
    if len(found) == 1:
        return _period(*found[0])
    start = min(f[0] for f in found)
    end = max(f[1] for f in found)
    return _period(start, end, f"{found[0][2]} to {found[-1][2]}")


def _relative(unit: str, shift: int, today: dt.date) -> tuple[dt.date, dt.date] | None:
    if unit == "month":
        start = _add_months(dt.date(today.year, today.month, 1), shift)
        return start, _add_months(start, 1)
    if unit == "quarter":
        start = _add_months(dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), 3 * shift)
        return start, _add_months(start, 3)
    if unit == "year":
        return dt.date(today.year + shift, 1, 1), dt.date(today.year + shift + 1, 1, 1)
    if unit == "week":
        start = today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=shift)
        return start, start + dt.timedelta(days=7)
    return None


def _label(start: dt.date, end: dt.date) -> str:
    last = end - dt.timedelta(days=1)
    if start.day == 1 and end == _add_months(start, 1):
        return f"{calendar.month_name[start.month]} {start.year}"
    if start.day == 1 and start.month % 3 == 1 and end == _add_months(start, 3):
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    if start == dt.date(start.year, 1, 1) and end == dt.date(start.year + 1, 1, 1):
        return str(start.year)
    return f"{start.isoformat()} to {last.isoformat()}"


# --------------------------------------------------------------------------------------------
# follow-ups and the entry point
# --------------------------------------------------------------------------------------------


def is_follow_up(message: str) -> bool:
    """Whether `message` refers back to earlier turns: a pronoun ("his", "them", "it"), "that/this/
    the same account|deal|rep...", or an opener like "and ...", "what about", "how about"."""
    words = [t.norm for t in tokenize(message)]
    if not words:
        return False
    if words[0] in ("and", "also", "same") or words[:2] in (["what", "about"], ["how", "about"]):
        return True
    if any(w in _PRONOUNS for w in words) or _ends_on_that(words):
        return True
    return any(w in _DEMONSTRATIVES and nxt in _REFERENCE_NOUNS for w, nxt in itertools.pairwise(words))


def _ends_on_that(words: Sequence[str]) -> bool:
    """ "How many accounts is that?", "who is that?": the message ends pointing at the last answer."""
    return bool(words) and words[-1] in ("that", "this")


#: The record kind a noun after "that/this" means ("that office", "this rep").
_NOUN_KINDS: dict[str, tuple[str, ...]] = {
    "account": ("account",), "company": ("account",), "customer": ("account",), "client": ("account",),
    "rep": ("rep",), "agent": ("rep",), "person": ("rep", "manager"), "guy": ("rep", "manager"),
    "manager": ("manager",), "office": ("office",), "product": ("product",), "deal": ("deal",),
    "opportunity": ("deal",), "one": ("deal", "account", "product", "rep", "manager", "office"),
}  # fmt: skip
_PERSON_PRONOUNS = _words("he him his she her hers")
_THING_PRONOUNS = _words("it its")
_PERSON_KINDS = ("rep", "manager", "contact")


_SET_REFERENCE = re.compile(r"\b(?:of|among|between) (?:them|those|these|the two|all of them)\b", re.I)


def _set_referent(message: str, answered: Sequence[EntityRef], named_kinds: set[str]) -> list[EntityRef]:
    """The records of one kind the last answer listed, when `message` chooses among them ("which
    of them", "among those"): the kind with the most records (at least two), else []."""
    if not _SET_REFERENCE.search(message):
        return []
    by_kind: dict[str, list[EntityRef]] = {}
    for e in answered:
        if e.kind not in named_kinds and e.kind in (
            "account",
            "rep",
            "product",
            "manager",
            "office",
            "sector",
        ):
            by_kind.setdefault(e.kind, []).append(e)
    best = max(by_kind.values(), key=len, default=[])
    return best if len(best) >= 2 else []


def _referent(
    message: str, answered: Sequence[EntityRef], named_kinds: set[str], *, nouns_only: bool = False
) -> tuple[EntityRef | None, bool]:
    """The record of the previous answer that `message` points at, and whether it was pointed at
    with "that/this <noun>" (True) rather than a pronoun: "that office" is the first office the
    answer named, "her" its last person, "its"/"it" its last other record ("X is a subsidiary of
    Y": "it" is Y). (None, False) when the
    message points at nothing the answer named, or already names a record of that kind; plural
    pronouns ("them") point at a set, which is not one record. `nouns_only`: only "that <noun>"
    points (used on the rep's own earlier records, where a pronoun keeps them all)."""
    if not answered:
        return None, False
    words = [t.norm for t in tokenize(message)]
    for w, nxt in itertools.pairwise(words):
        if w in _DEMONSTRATIVES and nxt.rstrip("s") in _NOUN_KINDS and not nxt.endswith("s"):
            # the noun's kinds in their order of preference ("that one": a deal before its
            # account), the first the answer named (a ranking names its winner first)
            found = next(
                (
                    e
                    for kind in _NOUN_KINDS[nxt]
                    for e in answered
                    if e.kind == kind and kind not in named_kinds
                ),
                None,
            )
            return found, found is not None
    if nouns_only:
        return None, False
    if _ends_on_that(words):
        # "how many accounts is that?": the record the answer was about, its first
        found = next((e for e in answered if e.kind not in named_kinds), None)
        return found, False
    if any(w in _PERSON_PRONOUNS for w in words):
        found = next(
            (e for e in reversed(answered) if e.kind in _PERSON_KINDS and e.kind not in named_kinds), None
        )
        return found, False
    if any(w in _THING_PRONOUNS for w in words):
        found = next(
            (e for e in reversed(answered) if e.kind not in _PERSON_KINDS and e.kind not in named_kinds), None
        )
        return found, False
    return None, False


def _derived(index: NameIndex, message: str, items: Iterable[EntityRef]) -> list[EntityRef]:
    """The manager / office of the first rep in `items` when the message asks about a manager or
    an office and names none ("and his manager?")."""
    seq = [t.norm for t in tokenize(message)]
    words = set(seq)
    if any(a in ("report", "reports") and b == "to" for a, b in itertools.pairwise(seq)):
        words.add("manager")  # "who does Carl Lin report to?"
    items = list(items)
    rep = next((e for e in items if e.kind == "rep" and e.id is not None), None)
    if rep is None or rep.id not in index.reps:
        return []
    manager, office = index.reps[rep.id]
    kinds = {e.kind for e in items}
    out: list[EntityRef] = []
    if words & _MANAGER_WORDS and "manager" not in kinds and manager:
        out.append(EntityRef(kind="manager", key=manager, mention=f"{rep.key}'s manager"))
    if words & _OFFICE_WORDS and "office" not in kinds and office:
        out.append(EntityRef(kind="office", key=office, mention=f"{rep.key}'s office"))
    return out


def resolve_entities(
    session: Session,
    message: str,
    previous: Entities | dict[str, Any] | None = None,
    *,
    today: dt.date | None = None,
) -> Entities:
    """The entities and period of `message`, resolved against the CRM (see the module docstring).

    `previous`: the entities of the conversation so far (graph state). When the message names no
    record but refers back ("and his manager?", "what about them?"), the previous records are
    kept; when it names some and still refers back ("what about Kami?"), previous records of
    other kinds follow the new ones. The previous period is kept for a follow-up naming none.
    `today` defaults to the data's reference date read with the name index (`NameIndex.as_of`).
    Never raises for odd text; an empty message gives empty Entities.
    """
    index = name_index(session)
    prev = Entities.model_validate(previous) if isinstance(previous, dict) else previous
    items = find_entities(index, message)
    period = parse_period(message, today or index.as_of or reference_date(session))
    if prev is not None and is_follow_up(message):
        kinds: set[str] = {e.kind for e in items}
        group = _set_referent(message, prev.answered, kinds)
        if group:
            # "which of them ...": the records the last answer listed, as a set to choose from
            items += group
            kinds.add(group[0].kind)
            items += [e for e in prev.items if e.kind not in kinds]
            period = period or prev.period
            items += _derived(index, message, items)
            return Entities(items=items, period=period)
        referent, pointed = _referent(message, prev.answered, kinds)
        if referent is None:
            # "that office" may point at a record the rep's own turns brought in
            referent, pointed = _referent(message, prev.items, kinds, nouns_only=True)
        if referent is not None:
            # "that office", "its list price", "who manages her?" after an answer that named
            # the record: it replaces the earlier record of its kind; "that <noun>" names the
            # record outright, so the earlier ones it was reached from are dropped
            items.append(referent)
            kinds.add(referent.kind)
            if not pointed:
                items += [e for e in prev.items if e.kind not in kinds]
        else:
            items += [e for e in prev.items if e.kind not in kinds]
        period = period or prev.period
    items += _derived(index, message, items)
    return Entities(items=items, period=period)
