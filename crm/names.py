"""Every name the CRM knows, in one index (`NameIndex`) read two ways. Pure: no database access;
`tools.names.name_index` reads the rows (`NameRow`) and caches the index per database.

1. Resolving a rep's message to records (the chat's entity resolver, `graphs.entities`):
   `records` maps a name's letters and digits run together ("gtxpro" for "GTX Pro",
   "xxholding" for "Xx-holding") to the records it names (`NameTarget`: kind, key, row id), with
   aliases: a name without "The" or its company suffix ("New York Inquirer", "Bluth"), a single
   first or last name ("Bicknell") when it belongs to one record, sector synonyms ("tech"), stage
   names and aliases ("negotiating"). `deals` maps an upper-cased deal id to the record and `reps`
   a rep to their manager and office ("and his manager?").
2. Checking the names of a reply (the guards, `guards.names.unknown_names`): the lower-cased
   words of every name as written (`phrases`: whole names and their prefixes, `full`: whole
   names), the first and last names of people (`person_parts`), deal ids, product series ("GTX")
   and product names, and the names containing digits ("GTK 500"), which are not figures.

The two readings tokenise differently on purpose: the resolver glues words ("gtxpro" = "GTX Pro")
because a rep types names loosely, while the guards read a reply's words as written.
`NameIndex.from_rows` builds both from the CRM's rows; `NameIndex.from_names` builds the second
from plain names (tests, the guards' eval cases).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from contracts import EntityKind

#: The kinds of `NameRow`. Managers and regional offices are read from the reps' rows.
RowKind = Literal["account", "sector", "country", "rep", "contact", "product", "stage", "deal"]


@dataclass(frozen=True, slots=True)
class NameRow:
    """One name as stored in the CRM.

    `kind`: "account", "contact", "product", "deal" (`name` is the external id), "rep" (with
    `manager` and `office`, the regional office), "stage" (`name` is the display name, `key` the
    stage key), "sector" or "country" (an account's sector, or its office location). `id`: the row
    id of accounts, contacts, products, deals and reps; None for the others.
    """

    kind: RowKind
    name: str
    id: int | None = None
    key: str | None = None
    manager: str | None = None
    office: str | None = None


# --------------------------------------------------------------------------------------------
# vocabulary
# --------------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words never used alone as a name when resolving a message (function words, company-form
#: suffixes): "Bluth Company" gets the alias "Bluth", never "Company".
STOP_WORDS = _words(
    """a an and the of for to in on at by with from co company corp corporation inc incorporated
    llc ltd limited plc gmbh group holding holdings partners partner capital international global
    new york united states bank systems solutions services technologies technology"""
)

#: Words that make a company name ("X Industries"); a run of capitalised words holding one is not a
#: person, and in a reply they are fine alone or after a known name.
ORG_WORDS = _words(
    """inc incorporated corp corporation co company companies llc ltd limited plc gmbh ag sa bv nv
    group holdings holding industries partners systems solutions technologies technology tech labs
    enterprises international global capital ventures traders trading bank associates consulting
    services networks software dynamics motors foods pharma media"""
)

#: Synonyms people type for the sector values found in the CRM (only used if that sector exists).
_SECTOR_SYNONYMS = {
    "tech": "technology",
    "telecom": "telecommunications",
    "telco": "telecommunications",
    "healthcare": "medical",
    "health": "medical",
    "financial": "finance",
    "fintech": "finance",
    "media": "entertainment",
}
#: Stage words people use for a stage key (only used if that stage exists).
_STAGE_ALIASES = {"negotiating": "negotiation", "engaged": "engaging"}

#: A deal id as the guards read it in a reply: 8 upper-case letters and digits, at least one of each.
DEAL_ID = re.compile(r"\b(?=[A-Z0-9]{8}\b)(?=[A-Z]*\d)(?=\d*[A-Z])[A-Z0-9]{8}\b")


# --------------------------------------------------------------------------------------------
# tokens
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """A word of a message as the resolver reads it: `norm` its lower-cased letters and digits,
    `start`/`end` its character offsets, `capital` whether it starts with an upper-case letter."""

    norm: str
    start: int
    end: int
    capital: bool


_WORD = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[Token]:
    """Letter/digit runs of `text` (punctuation splits words), with an `'s` possessive dropped
    ("Bicknell's" -> "Bicknell")."""
    out: list[Token] = []
    for m in _WORD.finditer(text):
        word = m.group()
        if word.lower() == "s" and m.start() > 0 and text[m.start() - 1] in "'’" and out:
            continue
        out.append(Token(word.lower(), m.start(), m.end(), word[0].isupper()))
    return out


def _norm_tokens(name: str) -> list[str]:
    return [t.norm for t in tokenize(name)]


#: A word of a reply as the guards read it: letters and digits with inner apostrophes, dots and
#: hyphens kept ("Xx-holding", "Kami's"), or "&".
PHRASE_TOKEN = re.compile(r"&|[A-Za-z0-9](?:[A-Za-z0-9'\u2019.\-]*[A-Za-z0-9])?")


def phrase_tokens(text: str) -> list[str]:
    """The lower-cased `PHRASE_TOKEN` words of `text`."""
    return [t.lower() for t in PHRASE_TOKEN.findall(text)]


def _looks_like_person(tokens: list[str], raw: str) -> bool:
    words = raw.split()
    return (
        2 <= len(tokens) <= 3
        and all(w[:1].isupper() and w.replace("-", "").replace("'", "").isalpha() for w in words)
        and not any(t in ORG_WORDS for t in tokens)
    )


# --------------------------------------------------------------------------------------------
# the index
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NameTarget:
    """A record a name stands for: `kind`, `key` (its name, or the stage key), row `id` (None for
    managers, offices, sectors and stages); `partial` when the name is one word of a longer name
    ("Acme"), `context` when it is an ordinary word (office, sector, stage) that names the record
    only in context ("West office")."""

    kind: EntityKind
    key: str
    id: int | None
    partial: bool = False
    context: bool = False


@dataclass
class NameIndex:
    """Every name the CRM knows (module docstring). Build with `from_rows` or `from_names`.

    For resolving messages: `records` (letters and digits of a name -> its `NameTarget`s),
    `max_tokens` (most tokens of a name), `deals` (upper-cased deal id -> (deal id, row id)),
    `reps` (rep row id -> (manager, regional office)).

    For checking replies: `phrases` (lower-cased token tuples of every name and of their prefixes,
    so "Vehement Capital" reads as part of Vehement Capital Partners), `full` (whole names),
    `person_parts` (first and last names of people), `deal_ids` (upper-case names shaped like a
    deal id), `series` (product series, "gtx"), `products` (product names as token tuples),
    `digit_names` (names containing digits, "GTK 500"), `max_len` (most tokens of a phrase).

    `as_of`: the data's reference date when the index was read from the CRM (the resolver's
    "today" for periods such as "this quarter"); None for an index built from plain names.
    """

    as_of: dt.date | None = None
    records: dict[str, list[NameTarget]] = field(default_factory=dict)
    max_tokens: int = 1
    deals: dict[str, tuple[str, int]] = field(default_factory=dict)
    reps: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)

    phrases: set[tuple[str, ...]] = field(default_factory=set)
    full: set[tuple[str, ...]] = field(default_factory=set)
    person_parts: set[str] = field(default_factory=set)
    deal_ids: set[str] = field(default_factory=set)
    series: set[str] = field(default_factory=set)
    products: set[tuple[str, ...]] = field(default_factory=set)
    digit_names: list[str] = field(default_factory=list)
    max_len: int = 1
    _digit_re: re.Pattern[str] | None = None

    # ----------------------------------------------------------------------------- building

    @classmethod
    def from_rows(cls, rows: Iterable[NameRow], *, as_of: dt.date | None = None) -> NameIndex:
        """The index of the CRM's names (both readings), read when the data's reference date was
        `as_of`. Rows of a kind keep their order; the resolver lists the records of one name in
        the order account, rep, manager, office, product, contact, sector, stage."""
        by_kind: dict[str, list[NameRow]] = {}
        for row in rows:
            by_kind.setdefault(row.kind, []).append(row)
        idx = cls(as_of=as_of)
        idx._index_records(by_kind)
        # Every name, people's managers and offices included; products apart (their series).
        names: set[str] = set()
        for kind in ("account", "sector", "country", "contact", "deal"):
            names.update(r.name for r in by_kind.get(kind, ()) if r.name)
        for r in by_kind.get("rep", ()):
            names.update(n for n in (r.name, r.manager, r.office) if n)
        for r in by_kind.get("stage", ()):
            names.update(n for n in (r.key, r.name) if n)
        products = {r.name for r in by_kind.get("product", ()) if r.name}
        idx._index_phrases(sorted(names), sorted(products))
        return idx

    @classmethod
    def from_names(cls, names: Iterable[str], *, products: Iterable[str] = ()) -> NameIndex:
        """The reply-checking half of the index from plain names (any kind; `records` stay
        empty). Names shaped like deal ids become deal ids; a name starting with an upper-case
        2-4 letter word ("GTX Pro", "MG Special") is a product of that series; 2-3 capitalised
        words without a company word are a person; `products` are product names."""
        idx = cls()
        idx._index_phrases(names, list(products))
        return idx

    def _index_phrases(self, names: Iterable[str], products: Sequence[str]) -> None:
        for raw in [*names, *products]:
            raw = (raw or "").strip()
            if not raw:
                continue
            if DEAL_ID.fullmatch(raw):
                self.deal_ids.add(raw.upper())
                continue
            toks = phrase_tokens(raw)
            if not toks:
                continue
            tup = tuple(toks)
            self.full.add(tup)
            for i in range(1, len(tup) + 1):
                self.phrases.add(tup[:i])
            if tup[0] == "the" and len(tup) > 1:
                rest = tup[1:]
                self.full.add(rest)
                for i in range(1, len(rest) + 1):
                    self.phrases.add(rest[:i])
            self.max_len = max(self.max_len, len(tup))
            first = raw.split()[0]
            if len(toks) >= 2 and re.fullmatch(r"[A-Z]{2,4}", first):
                self.series.add(toks[0])
                self.products.add(tup)
            elif _looks_like_person(toks, raw):
                self.person_parts.update(toks)
            if any(c.isdigit() for c in raw):
                self.digit_names.append(raw)
        for p in products:
            toks = phrase_tokens(p)
            if toks:
                self.products.add(tuple(toks))

    def _index_records(self, by_kind: dict[str, list[NameRow]]) -> None:
        for row in by_kind.get("account", ()):
            self._add_name("account", row.name, row.id, partials=True)
        for row in by_kind.get("rep", ()):
            self._add_name("rep", row.name, row.id, partials=True)
            if row.id is not None:
                self.reps[row.id] = (row.manager, row.office)
        for manager in {m for m, _ in self.reps.values() if m}:
            self._add_name("manager", manager, None, partials=True)
        for office in {o for _, o in self.reps.values() if o}:
            self._add(_norm_tokens(office), NameTarget("office", office, None, context=True))
        for row in by_kind.get("product", ()):
            self._add_name("product", row.name, row.id, partials=False)
        for row in by_kind.get("contact", ()):
            self._add_name("contact", row.name, row.id, partials=False)
        sectors = {r.name for r in by_kind.get("sector", ()) if r.name}
        for sector in sectors:
            self._add(_norm_tokens(sector), NameTarget("sector", sector, None, context=True))
        by_lower = {s.lower(): s for s in sectors}
        for word, canonical in _SECTOR_SYNONYMS.items():
            if canonical in by_lower:
                self._add([word], NameTarget("sector", by_lower[canonical], None, context=True))
        stage_keys: set[str] = set()
        for row in by_kind.get("stage", ()):
            key = row.key or row.name
            target = NameTarget("stage", key, None, context=True)
            stage_keys.add(key)
            self._add(_norm_tokens(key), target)
            self._add(_norm_tokens(row.name), target)
            self._add(_norm_tokens(row.name.lower().removeprefix("closed ")), target)
        for alias, key in _STAGE_ALIASES.items():
            if key in stage_keys:
                self._add([alias], NameTarget("stage", key, None, context=True))
        for row in by_kind.get("deal", ()):
            if row.id is not None:
                self.deals[row.name.upper()] = (row.name, row.id)
        # A partial token shared by several records names none of them.
        for key, targets in list(self.records.items()):
            whole = [t for t in targets if not t.partial]
            if whole:
                self.records[key] = whole
            elif len({(t.kind, t.key) for t in targets}) > 1:
                del self.records[key]

    def _add(self, tokens: Sequence[str], target: NameTarget) -> None:
        if not tokens:
            return
        key = "".join(tokens)
        bucket = self.records.setdefault(key, [])
        if all((t.kind, t.key) != (target.kind, target.key) for t in bucket):
            bucket.append(target)
        self.max_tokens = max(self.max_tokens, len(tokens))

    def _add_name(self, kind: EntityKind, name: str, row_id: int | None, *, partials: bool) -> None:
        toks = _norm_tokens(name)
        self._add(toks, NameTarget(kind, name, row_id))
        if not partials:
            return
        # "The New York Inquirer" -> "New York Inquirer"; "Bluth Company" -> "Bluth"
        core = list(toks)
        while core and core[0] in {"the", "a", "an"}:
            core = core[1:]
        while len(core) > 1 and core[-1] in STOP_WORDS:
            core = core[:-1]
        if core != toks and len(core) > 1:
            self._add(core, NameTarget(kind, name, row_id))
        if len(toks) > 1 and not (kind == "account" and "-" in name):
            # people: first and last name; companies: the first word ("Acme"), except hyphenated
            # names, whose parts are not names on their own ("Ron-tech", "Kan-code")
            for tok in {core[0], toks[-1]} if kind in ("rep", "manager", "contact") else {core[0]}:
                if tok not in STOP_WORDS and len(tok) >= 3 and not tok.isdigit():
                    self._add([tok], NameTarget(kind, name, row_id, partial=True))

    # ----------------------------------------------------------------------------- lookups

    def targets(self, tokens: Sequence[Token]) -> list[NameTarget]:
        """The records the words `tokens` name together (empty when none)."""
        return self.records.get("".join(t.norm for t in tokens), [])

    def deal(self, text: str) -> tuple[str, int] | None:
        """(deal id as stored, row id) of the deal whose id is `text` (any case), or None."""
        return self.deals.get(text.upper())

    @property
    def digit_name_pattern(self) -> re.Pattern[str] | None:
        """One regex matching any name that contains digits (longest first), or None."""
        if self._digit_re is None and self.digit_names:
            alts = sorted({re.escape(n) for n in self.digit_names}, key=len, reverse=True)
            self._digit_re = re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)
        return self._digit_re

    def knows_phrase(self, tokens: tuple[str, ...]) -> bool:
        """Whether the lower-cased words `tokens` are a known name or the start of one."""
        return tokens in self.phrases
