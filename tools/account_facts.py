"""Factual questions about accounts, contacts and reps, answered from the CRM by rules (no LLM
needed to find the answer): sector of an account, accounts in a sector (count and names),
subsidiaries and parent, size/revenue/founding/location, contacts, a rep's manager, office or
team, a manager's team, and prospect lists ("retail accounts with more than 1,000 employees we
haven't sold to").

`answer_fact(session, message, entities, rep_ids=...)` returns an `Answer` (template sentence +
facts + sources) or None when the message is not such a question. Rules look at the message with
entity names masked (`tools.query_plan.masked`), so a name cannot trigger them.

Answers keep to the caller's reading (`rep_ids`: `Caller.read_rep_ids`, None: everything, the
rules of `crm.access`): an account outside it is answered as one the caller cannot see (no
profile, no contacts), and lists (sector, subsidiaries, prospects) hold only readable accounts.
The team directory (who manages whom, offices, teams) is readable by everyone, as on the REST API.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts import Entities, EntityRef, Source
from crm import analytics, insights
from crm.access import RepIds, account_readable, accounts_condition
from crm.errors import DomainError
from crm.lookup import get_by_ref
from crm.models import Account
from crm.schemas import AccountBrief
from tools import accounts
from tools.answers import Answer
from tools.directory_facts import answer_directory
from tools.fact_words import ACCOUNT_WORD, COUNTING, DEALS_WORDS, LISTING
from tools.formatting import count, count_fact, join_names, money, names_and_more
from tools.query_plan import masked
from tools.sources import account_source

__all__ = ["ACCOUNT_WORD", "COUNTING", "DEALS_WORDS", "LISTING", "answer_fact", "safe_answer_fact"]


def _rx(p: str) -> re.Pattern[str]:
    return re.compile(p, re.I)


SUBSIDIARIES = _rx(
    r"\b(subsidiar\w*|child (compan\w*|accounts?)|daughter compan\w*|(owns|own|owned)\b|under <account_ent>)"
)
PARENT = _rx(
    r"\b(parent|owned by|belongs? to|part of (a |an )?(larger |bigger )?(group|company|holding)|"
    r"holding company|owner)\b"
)
SECTOR = _rx(r"\b(sector|industry|industries|vertical|line of business|what (does|do) <account_ent> do)\b")
SIZE = _rx(r"\b(employees?|headcount|staff|people|workforce|how big|size)\b")
REVENUE = _rx(
    r"\b(annual revenue|revenue|turnover|sales volume|how much (does|do) <account_ent> (make|earn))\b"
)
FOUNDED = _rx(r"\b(founded|established|since when|how old|year (it was )?(started|founded)|incorporated)\b")
LOCATION = _rx(r"\b(where|located|location|headquarter\w*|hq|based|country|office location)\b")
CONTACTS = _rx(
    r"\b(contacts?|who (do we know|should i (call|talk to|email))|people at|persons? at|"
    r"decision makers?|buyers? at)\b"
)
MANAGER = _rx(r"\b(manager|manages|boss|reports? to|supervisor|team lead|line manager|superior)\b")
OFFICE = _rx(r"\b(office|region|based|located|where)\b")
TEAM = _rx(r"\b(team|reports|who (works|sells) (for|under)|reps? under|members)\b")
EMPLOYEES_OVER = _rx(
    r"\b(?:more than|over|above|at least|>=?|greater than)\s*([\d,.]+)\s*(k|"
    r"thousand)?\s*(?:employees|people|staff)"
)
#: Words of a question about a sector's accounts that asks more than their list or count (a
#: share, an average, another filter): the semantic layer answers those.
OTHER_FILTER = _rx(
    r"\b(percent\w*|share|proportion|fraction|average|avg|mean|median|total|sum|employees?|headcount|"
    r"founded|established|revenue|located|location|countr(y|ies)|parent|subsidiar\w*|largest|"
    r"biggest|smallest|oldest|youngest|most|least|top)\b"
)
NOT_SOLD = _rx(
    r"\b(haven'?t (we |you |they )?(sold|won|closed)|have (we |you )?not (sold|won|closed)|"
    r"never (bought|sold|purchased)|no (won )?deals?|not (yet )?(a )?customers?|not sold|"
    r"without (any )?(won )?deals?)\b"
)


def _account(session: Session, e: EntityRef) -> Any:
    return get_by_ref(session, Account, e.id if e.id is not None else e.key)


def _sector_answer(session: Session, sector: str, listing: bool, rep_ids: RepIds) -> Answer:
    found = accounts.accounts_in_sector(session, sector, rep_ids=rep_ids)
    names = [a.name for a in found.accounts]
    facts: list[dict[str, Any]] = [{"sector": sector, "accounts": found.count, "names": names}]
    sources = [account_source(a) for a in found.accounts[:10]]
    if found.count == 0:
        scoped = "" if rep_ids is None else " you can see"
        return Answer(f"There are no accounts{scoped} in the {sector} sector.", facts, [])
    listed = names_and_more(names, 12, total=found.count)
    shown = listed.text
    facts += listed.facts
    if listing:
        draft = f"The {count(found.count, 'account')} in the {sector} sector: {shown}."
        return Answer(draft, facts, sources, names=names[:12], key_figures=[])
    verb = "is" if found.count == 1 else "are"
    draft = f"There {verb} {count(found.count, 'account')} in the {sector} sector: {shown}."
    return Answer(draft, facts, sources, key_figures=[str(found.count)])


#: "Which sector has the most accounts?": the sectors ranked by their number of accounts.
SECTOR_RANK = _rx(
    r"\b(which|what) (sector|industry|vertical)\b.{0,40}\b(most|fewest|least|largest|smallest|biggest)\b"
    r".{0,20}\b(accounts?|customers?|companies|clients?)\b"
)


def _sector_rank(session: Session, text: str, rep_ids: RepIds) -> Answer:
    """The sector with the most (or fewest) accounts, ties named, with its count."""
    query = select(Account.sector, func.count()).where(Account.sector.is_not(None)).group_by(Account.sector)
    visible = accounts_condition(rep_ids)
    if visible is not None:
        query = query.where(visible)
    rows = [(str(s), int(n)) for s, n in session.execute(query)]
    if not rows:
        return Answer("There are no accounts with a sector in the CRM.", [], [])
    fewest = re.search(r"\b(fewest|least|smallest)\b", text) is not None
    best = (min if fewest else max)(n for _, n in rows)
    top = sorted(s for s, n in rows if n == best)
    which = "fewest" if fewest else "most"
    facts: list[dict[str, Any]] = [{"sector": s, "accounts": n} for s, n in rows]
    verb = "sector has" if len(top) == 1 else "sectors have"
    draft = f"The {join_names(top)} {verb} the {which} accounts: {count(best, 'account')}"
    draft += f" (compared across {len(rows)} sectors)." if len(top) == 1 else " each."
    facts.append(count_fact("sectors_compared", len(rows)))
    return Answer(draft, facts, [], names=top, key_figures=[str(best)])


def _sectors_compared(session: Session, names: list[str], rep_ids: RepIds) -> Answer:
    """The number of accounts in each of two sectors, and which has more ("do we have more
    accounts in entertainment or in finance?")."""
    counts = [(name, accounts.accounts_in_sector(session, name, rep_ids=rep_ids).count) for name in names]
    (a, na), (b, nb) = counts
    draft = f"The {a} sector has {count(na, 'account')} and the {b} sector {count(nb, 'account')}"
    if na == nb:
        draft += ": the same number."
    else:
        more, gap = (a, na - nb) if na > nb else (b, nb - na)
        draft += f": {more} has {count(gap, 'account')} more."
    facts: list[dict[str, Any]] = [{"sector": name, "accounts": n} for name, n in counts]
    return Answer(draft, facts, [], names=[a, b], key_figures=[str(na), str(nb)])


def _prospects(session: Session, sector: str | None, text: str, rep_ids: RepIds) -> Answer:
    m = EMPLOYEES_OVER.search(text)
    threshold = 0
    if m:
        threshold = int(float(m.group(1).replace(",", "")) * (1000 if m.group(2) else 1))
    stmt = select(Account).order_by(Account.employees.desc().nulls_last(), Account.name)
    if sector:
        stmt = stmt.where(func.lower(Account.sector) == sector.lower())
    if threshold:
        stmt = stmt.where(Account.employees > threshold)
    visible = accounts_condition(rep_ids)
    if visible is not None:
        stmt = stmt.where(visible)
    rows = session.scalars(stmt).all()
    # "no won deal" over every rep's deals: a prospect another team already won is not one
    purchases = {p.account.id: p for p in insights.account_purchases(session, [a.id for a in rows])}
    targets = [a for a in rows if purchases.get(a.id) is None or purchases[a.id].won_deals == 0]
    facts: list[dict[str, Any]] = [
        {"account": a.name, "sector": a.sector, "employees": a.employees, "won_deals": 0}
        for a in targets[:10]
    ]
    where = f" in the {sector} sector" if sector else ""
    size = f" with more than {threshold:,} employees" if threshold else ""
    # the reply counts every target, the facts list at most 10 of them
    facts.append(count_fact("accounts_found", len(targets)))
    if not targets:
        draft = f"Every account{where}{size} already has won deals: no untouched prospects there."
        return Answer(draft, facts, [], key_figures=[])
    items = "; ".join(
        f"{a.name} ({a.employees:,} employees)" if a.employees else a.name for a in targets[:10]
    )
    draft = f"{count(len(targets), 'account')}{where}{size} with no won deal yet: {items}."
    sources = [account_source(AccountBrief.model_validate(a)) for a in targets[:10]]
    return Answer(draft, facts, sources, names=[targets[0].name], key_figures=[])


def _not_visible(name: str) -> Answer:
    """The answer about an account outside the caller's reading: nothing of its record shown."""
    facts: list[dict[str, Any]] = [{"account": name, "visible": False}]
    draft = f"{name} is not among the accounts you can see, so I can't tell you about it."
    return Answer(draft, facts, [], key_figures=[])


def _account_fact(session: Session, text: str, e: EntityRef, rep_ids: RepIds) -> Answer | None:
    row = _account(session, e)
    if not account_readable(session, row.id, rep_ids):
        return _not_visible(row.name)
    scoped = "" if rep_ids is None else " you can see"
    brief = AccountBrief.model_validate(row)
    src = account_source(brief, employees=row.employees, revenue_musd=float(row.revenue_musd or 0))
    if SECTOR.search(text) and re.search(r"\bthe parent\b(?! (company )?of)", text):
        # "which sector is the parent itself in?": the parent named in the earlier turns is the
        # account resolved here
        facts0: list[dict[str, Any]] = [{"account": row.name, "sector": row.sector}]
        if row.sector:
            return Answer(
                f"{row.name} is in the {row.sector} sector.",
                facts0,
                [src],
                names=[row.sector],
                key_figures=[],
            )
    if SUBSIDIARIES.search(text) and not PARENT.search(text):
        subs = accounts.subsidiaries(session, row.id, rep_ids=rep_ids)
        names = [s.name for s in subs]
        facts: list[dict[str, Any]] = [{"account": row.name, "subsidiaries": names}]
        if not subs:
            draft = f"{row.name} has no subsidiaries{scoped} in the CRM."
            return Answer(draft, facts, [src], key_figures=[])
        noun = "subsidiary" if len(subs) == 1 else "subsidiaries"
        draft = f"{row.name} has {len(subs)} {noun}: {join_names(names)}."
        return Answer(draft, facts, [src, *(account_source(s) for s in subs)], names=names, key_figures=[])
    if PARENT.search(text):
        parent = accounts.parent_account(session, row.id, rep_ids=rep_ids)
        facts = [{"account": row.name, "parent": parent.name if parent else None}]
        if parent is None and row.parent_account_id is not None:
            draft = f"{row.name} is a subsidiary of an account you can't see."
            return Answer(draft, facts, [src], key_figures=[])
        if parent is None:
            return Answer(
                f"{row.name} is not a subsidiary of another account in the CRM.", facts, [src], key_figures=[]
            )
        draft = f"{row.name} is a subsidiary of {parent.name}."
        return Answer(draft, facts, [src, account_source(parent)], names=[parent.name], key_figures=[])
    if SECTOR.search(text):
        facts = [{"account": row.name, "sector": row.sector}]
        if not row.sector:
            return Answer(f"The CRM has no sector for {row.name}.", facts, [src], key_figures=[])
        return Answer(
            f"{row.name} is in the {row.sector} sector.", facts, [src], names=[row.sector], key_figures=[]
        )
    if CONTACTS.search(text):
        people = accounts.contacts(session, row.id, rep_ids=rep_ids)
        facts = [{"account": row.name, "contacts": [c.model_dump(mode="json") for c in people]}]
        if not people:
            return Answer(f"The CRM has no contacts at {row.name} yet.", facts, [src], key_figures=[])
        items = "; ".join(
            f"{c.first_name} {c.last_name}"
            + (f", {c.title}" if c.title else "")
            + (f" ({c.email})" if c.email else "")
            for c in people
        )
        return Answer(f"Contacts at {row.name}: {items}.", facts, [src], key_figures=[])
    parts = []
    if SIZE.search(text) and row.employees is not None:
        parts.append(f"{row.employees:,} employees")
    if REVENUE.search(text) and not DEALS_WORDS.search(text) and row.revenue_musd is not None:
        parts.append(f"annual revenue of {money(float(row.revenue_musd))} million")
    if FOUNDED.search(text) and row.year_established:
        parts.append(f"established in {row.year_established}")
    if LOCATION.search(text) and row.office_location:
        parts.append(f"located in {row.office_location}")
    if parts:
        facts = [
            {
                "account": row.name,
                "employees": row.employees,
                "revenue_musd": float(row.revenue_musd or 0),
                "year_established": row.year_established,
                "office_location": row.office_location,
            }
        ]
        return Answer(f"{row.name}: {', '.join(parts)}.", facts, [src], key_figures=[])
    return None


#: Superlatives of an account attribute: (regex, attribute, largest first?, how it is said).
_FOUNDED_WORDS = r"\b(founded|established|incorporated)\b.{0,20}"
_MOST = r"\b(most|largest|biggest|highest|more|larger|bigger|higher)\b.{0,20}"
_LEAST = r"\b(fewest|smallest|least|lowest|fewer|smaller|lower|less)\b.{0,20}"
_PEOPLE = r"\b(employees|headcount|staff|people)\b"
_AMONG_ORDER: list[tuple[re.Pattern[str], str, bool, str]] = [
    (
        _rx(_FOUNDED_WORDS + r"\b(first|earliest)\b|\b(oldest|older)\b"),
        "year_established",
        False,
        "was founded first",
    ),
    (
        _rx(_FOUNDED_WORDS + r"\b(last|latest|most recently)\b|\b(youngest|newest|younger|newer)\b"),
        "year_established",
        True,
        "was founded last",
    ),
    (_rx(_MOST + _PEOPLE), "employees", True, "has the most employees"),
    (_rx(_LEAST + _PEOPLE), "employees", False, "has the fewest employees"),
    (_rx(_MOST + r"\b(annual )?revenue\b"), "revenue_musd", True, "has the highest annual revenue"),
    (_rx(_LEAST + r"\b(annual )?revenue\b"), "revenue_musd", False, "has the lowest annual revenue"),
]
_AMONG = _rx(r"\b(of|among|between) (them|those|these)\b|\bwhich\b")
#: "Which account was founded most recently?": every account (of the sector named) ranked.
_WHICH_ACCOUNT = _rx(r"\b(which|what)(?: [\w-]+){0,2} (account|company|customer|client|firm)\b")


def _shown(row: Any, attr: str) -> str:
    value = getattr(row, attr)
    if attr == "revenue_musd":
        return f"{money(float(value))} million"
    return str(value) if attr == "year_established" else f"{int(value):,}"


def _among_accounts(session: Session, text: str, refs: list[EntityRef], rep_ids: RepIds) -> Answer | None:
    """Which of several named accounts is first on an attribute ("which of them has the most
    employees / was founded first"), with every account's value; None when the text asks none."""
    if not _AMONG.search(text) or DEALS_WORDS.search(text):
        return None
    for rx, attr, largest, said in _AMONG_ORDER:
        if not rx.search(text):
            continue
        rows = [_account(session, e) for e in refs]
        rows = [r for r in rows if account_readable(session, r.id, rep_ids) and getattr(r, attr) is not None]
        if not rows:
            return None
        rows.sort(key=lambda r: float(getattr(r, attr)), reverse=largest)
        top = rows[0]

        others = "; ".join(f"{r.name}: {_shown(r, attr)}" for r in rows[1:])
        draft = f"Of those {len(rows)} accounts, {top.name} {said} ({_shown(top, attr)})" + (
            f"; the others: {others}." if others else "."
        )
        facts = [{"account": r.name, attr: getattr(r, attr)} for r in rows]
        facts.append(count_fact("accounts_compared", len(rows)))
        sources = [account_source(AccountBrief.model_validate(r)) for r in rows]
        return Answer(draft, facts, sources, names=[top.name], key_figures=[])
    return None


def _top_account(session: Session, text: str, sector: str | None, rep_ids: RepIds) -> Answer | None:
    """The account first on an attribute among all accounts (of `sector`), ties named: "which
    account was founded most recently", "which retail company has the most employees"."""
    for rx, attr, largest, said in _AMONG_ORDER:
        if not rx.search(text) or (attr == "revenue_musd" and "annual" not in text):
            continue  # "which customer has the most revenue" asks for won revenue: the deal rules'
        column = getattr(Account, attr)
        query = select(Account).where(column.is_not(None))
        if sector is not None:
            query = query.where(func.lower(Account.sector) == sector.lower())
        visible = accounts_condition(rep_ids)
        if visible is not None:
            query = query.where(visible)
        rows = list(session.scalars(query))
        if not rows:
            return None
        best = (max if largest else min)(float(getattr(r, attr)) for r in rows)
        top = sorted((r for r in rows if float(getattr(r, attr)) == best), key=lambda r: r.name)
        where = f" in the {sector} sector" if sector else ""
        names = [r.name for r in top]
        first = _shown(top[0], attr)
        draft = f"Of the {count(len(rows), 'account')}{where}, {join_names(names)} {said} ({first})."
        facts: list[dict[str, Any]] = [{"account": r.name, attr: getattr(r, attr)} for r in top]
        facts.append(count_fact("accounts_compared", len(rows)))
        sources = [account_source(AccountBrief.model_validate(r)) for r in top]
        return Answer(draft, facts, sources, names=names, key_figures=[])
    return None


def _rep_fact(session: Session, text: str, e: EntityRef) -> Answer | None:
    profile = accounts.rep_profile(session, e.id if e.id is not None else e.key)
    rep = profile.rep
    src = Source(
        kind="rep",
        id=str(rep.id),
        label=rep.name,
        data={"manager": rep.manager, "regional_office": rep.regional_office},
    )
    facts: list[dict[str, Any]] = [
        {
            "rep": rep.name,
            "manager": rep.manager,
            "regional_office": rep.regional_office,
            "teammates": profile.teammates,
        }
    ]
    if MANAGER.search(text):
        if not rep.manager:
            return Answer(f"The CRM has no manager for {rep.name}.", facts, [src], key_figures=[])
        return Answer(
            f"{rep.name}'s manager is {rep.manager}.", facts, [src], names=[rep.manager], key_figures=[]
        )
    if TEAM.search(text):
        return Answer(
            f"{rep.name} works in {rep.manager or 'an unnamed manager'}'s team "
            f"with {join_names(profile.teammates)}.",
            facts,
            [src],
            key_figures=[],
        )
    if OFFICE.search(text):
        if not rep.regional_office:
            return Answer(f"The CRM has no regional office for {rep.name}.", facts, [src], key_figures=[])
        return Answer(
            f"{rep.name} works in the {rep.regional_office} regional office.",
            facts,
            [src],
            names=[rep.regional_office],
            key_figures=[],
        )
    return None


def _manager_fact(session: Session, text: str, e: EntityRef) -> Answer | None:
    if not (TEAM.search(text) or MANAGER.search(text) or re.search(r"\bwho\b|\breps?\b", text)):
        return None
    team = analytics.team_of(session, e.key)
    names = [r.name for r in team]
    facts: list[dict[str, Any]] = [{"manager": e.key, "team": names}]
    office = {r.regional_office for r in team if r.regional_office}
    where = f" in the {next(iter(office))} office" if len(office) == 1 else ""
    draft = f"{e.key} manages {count(len(names), 'sales rep')}{where}: {join_names(names)}."
    return Answer(
        draft,
        facts,
        [Source(kind="manager", id=e.key, label=e.key, data={"team": names})],
        names=names,
        key_figures=[],
    )


def answer_fact(
    session: Session, message: str, entities: Entities, *, rep_ids: RepIds = None
) -> Answer | None:
    """The answer to a factual account/contact/rep question (or a product-catalog / team-directory
    one: `tools.directory_facts`), or None when `message` is not one,
    within the reading of `rep_ids` (the caller's `read_rep_ids`; None: all). Domain errors (an
    entity that vanished) propagate."""
    # the product catalog and the team directory first: their questions name products, offices
    # or teams, and "reps with no deals" must not be read as prospects ("no deals") below
    directory = answer_directory(session, message, entities, rep_ids=rep_ids)
    if directory is not None:
        return directory
    text = masked(message, entities)
    account = entities.first("account")
    rep = entities.first("rep")
    manager = entities.first("manager")
    sector = entities.first("sector")
    if (
        rep is not None
        and (MANAGER.search(text) or OFFICE.search(text) or TEAM.search(text))
        and not DEALS_WORDS.search(text)
    ):
        found = _rep_fact(session, text, rep)
        if found is not None:
            return found
    if manager is not None and rep is None and not DEALS_WORDS.search(text):
        found = _manager_fact(session, text, manager)
        if found is not None:
            return found
    if SECTOR_RANK.search(text) and not DEALS_WORDS.search(text):
        return _sector_rank(session, text, rep_ids)
    sectors = entities.of("sector")
    if len(sectors) >= 2 and ACCOUNT_WORD.search(text) and not DEALS_WORDS.search(text):
        return _sectors_compared(session, [e.key for e in sectors[:2]], rep_ids)
    named_accounts = entities.of("account")
    if len(named_accounts) >= 2:
        found = _among_accounts(session, text, named_accounts, rep_ids)
        if found is not None:
            return found
    if not named_accounts and _WHICH_ACCOUNT.search(text) and not DEALS_WORDS.search(text):
        found = _top_account(session, text, sector.key if sector else None, rep_ids)
        if found is not None:
            return found
    if account is not None and not DEALS_WORDS.search(text):
        found = _account_fact(session, text, account, rep_ids)
        if found is not None:
            return found
    if account is None and rep is None and NOT_SOLD.search(text):
        return _prospects(session, sector.key if sector else None, text, rep_ids)
    if (
        sector is not None
        and account is None
        and ACCOUNT_WORD.search(text)
        and not DEALS_WORDS.search(text)
        and not OTHER_FILTER.search(text)
    ):
        return _sector_answer(
            session,
            sector.key,
            listing=not COUNTING.search(text) and bool(LISTING.search(text)),
            rep_ids=rep_ids,
        )
    return None


def safe_answer_fact(
    session: Session, message: str, entities: Entities, *, rep_ids: RepIds = None
) -> Answer | None:
    """`answer_fact`, with a domain error (unknown name) as no answer."""
    try:
        return answer_fact(session, message, entities, rep_ids=rep_ids)
    except DomainError:
        return None
