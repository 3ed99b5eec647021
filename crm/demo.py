"""A small, realistic demo CRM, generated from a seed (no external data).

`seed_demo` fills an empty CRM with a fictitious hardware vendor's book of business: 25 accounts
(sectors, revenue, head count, country, a few parent/subsidiary links), 60 contacts, 6 products in
3 series, 10 sales reps in 3 regional offices with their managers, 300 deals spread over all seven
pipeline stages with the stage history of the path each took, a few reminders, an activity log
(events) and 50 searchable documents (call notes and emails) with embeddings.

Every name here is invented for the demo (e-mail domains use the reserved `.example` TLD and
phone numbers the fictional 555-01xx range). Dates are laid out relative to `today`, so the demo
always looks current; for a given (seed, today) the data is identical, row for row.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Table, exists, insert, or_, select, text, update
from sqlalchemy.orm import Session

from config.files import load_pipeline
from crm import workflow_runs
from crm.db import session_scope
from crm.models import (
    Account,
    Contact,
    Deal,
    DealStageHistory,
    Document,
    Event,
    Product,
    Reminder,
    SalesRep,
)

if TYPE_CHECKING:
    from crm.embeddings import Embedder

# (name, sector, country)
ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("Harborlight Logistics", "services", "United States"),
    ("Quillstone Media", "marketing", "United States"),
    ("Brightwater Clinics", "medical", "United States"),
    ("Copperfield Retail Group", "retail", "United States"),
    ("Tidewell Software", "software", "Canada"),
    ("Ironbark Capital", "finance", "United States"),
    ("Lumen Ridge Telecom", "telecommunications", "United States"),
    ("Silverpine Studios", "entertainment", "United States"),
    ("Meadowgate Health", "medical", "United States"),
    ("Kestrel Systems", "technology", "United States"),
    ("Bluefen Grocers", "retail", "United Kingdom"),
    ("Crescent Bay Insurance", "finance", "United States"),
    ("Oakhaven Staffing", "employment", "United States"),
    ("Parallax Robotics", "technology", "Germany"),
    ("Redwing Outfitters", "retail", "United States"),
    ("Summit Crest Labs", "medical", "United States"),
    ("Vantage Point Advisory", "services", "United States"),
    ("Willowmere Hotels", "entertainment", "United States"),
    ("Zephyr Networks", "telecommunications", "Japan"),
    ("Foxglove Therapeutics", "medical", "United States"),
    ("Halcyon Data Works", "software", "United States"),
    ("Juniper Lane Marketing", "marketing", "United States"),
    ("Lodestar Freight", "services", "Brazil"),
    ("Marigold Learning", "employment", "United States"),
    ("Northgale Energy", "technology", "United States"),
)
# child -> parent
SUBSIDIARIES = {
    "Parallax Robotics": "Kestrel Systems",
    "Crescent Bay Insurance": "Ironbark Capital",
    "Brightwater Clinics": "Meadowgate Health",
    "Summit Crest Labs": "Meadowgate Health",
    "Lodestar Freight": "Harborlight Logistics",
}
# (name, series, list price USD)
PRODUCTS: tuple[tuple[str, str, int], ...] = (
    ("Beacon Switch 24", "Beacon", 650),
    ("Beacon Switch 48 Pro", "Beacon", 1850),
    ("Nimbus Edge 100", "Nimbus", 1200),
    ("Nimbus Edge 300", "Nimbus", 3400),
    ("Atlas Storage S", "Atlas", 8900),
    ("Atlas Storage XL", "Atlas", 21500),
)
#: Relative frequency of each product among deals (cheaper products sell more often).
PRODUCT_WEIGHTS = (26, 18, 22, 16, 11, 7)
# office -> (manager, reps)
OFFICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Central": ("Renata Okafor", ("Priya Raman", "Tomasz Nowicki", "Ava Lindqvist", "Marcus Bell")),
    "East": ("Samuel Whitcombe", ("Hana Sato", "Diego Ferreira", "Leah Goldberg")),
    "West": ("Ingrid Castellano", ("Kwame Mensah", "Sofia Marchetti", "Owen Gallagher")),
}
FIRST_NAMES = (
    "Alicia", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hugo", "Imani", "Jonas", "Keiko",
    "Luis", "Maya", "Nikhil", "Olga", "Pedro", "Quinn", "Rosa", "Stefan", "Tara", "Umar", "Vera",
    "Wes", "Xin", "Yara", "Zane",
)  # fmt: skip
LAST_NAMES = (
    "Abbott", "Brennan", "Castillo", "Dubois", "Eriksen", "Fontaine", "Gupta", "Hollis", "Ibarra",
    "Jansen", "Kowalski", "Lindgren", "Moreau", "Nakamura", "Okonkwo", "Petrov", "Quintero",
    "Rahman", "Sorensen", "Thornton", "Uddin", "Varga", "Whitaker", "Yilmaz", "Zimmer",
)  # fmt: skip
TITLES = (
    "Chief Technology Officer", "IT Director", "VP of Operations", "Procurement Manager",
    "Head of Infrastructure", "Chief Financial Officer", "Network Engineer", "Facilities Manager",
)  # fmt: skip
AREA_CODES = (212, 312, 415, 617, 737, 206)
#: Final-stage mix of the 300 deals (sums to 300).
STAGE_MIX = {
    "prospecting": 30,
    "engaging": 40,
    "qualified": 30,
    "proposal": 25,
    "negotiation": 15,
    "won": 95,
    "lost": 65,
}
#: Where lost deals dropped out (the last open stage they reached), relative weights.
LOSS_POINTS = {"prospecting": 3, "engaging": 4, "qualified": 3, "proposal": 2, "negotiation": 1}

# What the notes and emails are about: (topic key, call note, email). {a} account, {c} contact,
# {p} product, {r} rep. Distinct themes make semantic search over the demo meaningful.
TOPICS: tuple[tuple[str, str, str], ...] = (
    (
        "security",
        "Call with {c} ({a}): their security team must finish a SOC 2 and penetration-test review "
        "before any purchase. They asked for our security whitepaper and data-retention policy for "
        "the {p}.",
        "Hi {c}, as promised I attached the security documentation for the {p}: SOC 2 Type II "
        "report, encryption at rest details and our vulnerability disclosure process. Best, {r}",
    ),
    (
        "budget",
        "{c} at {a} says the budget is frozen until next quarter; the CFO wants to see the ROI "
        "before approving the {p}. Follow up in six weeks with a payback estimate.",
        "Hi {c}, understood that spending is on hold this quarter. I put together a simple payback "
        "calculation for the {p} so you have it ready for the next budget round. Best, {r}",
    ),
    (
        "shipping",
        "{c} ({a}) complained that the last order arrived two weeks late and the warehouse team "
        "was frustrated by the delivery delay. Promised a tracking update and expedited freight.",
        "Hi {c}, I'm sorry about the late delivery. The replacement units of the {p} ship by "
        "express freight tomorrow; here is the tracking link. Best, {r}",
    ),
    (
        "volume",
        "{a} plans to roll out the {p} across all sites; {c} asked about a volume discount for "
        "about 200 units and staggered deliveries over two quarters.",
        "Hi {c}, for a commitment of 200 units of the {p} I can offer tiered pricing and split "
        "the deliveries over two quarters. Let me know a good time to review the numbers. Best, {r}",
    ),
    (
        "renewal",
        "Support contract renewal for {a} is due next month. {c} is happy with response times but "
        "wants next-business-day replacement added for the {p}.",
        "Hi {c}, attached is the renewal quote for your support contract, now including "
        "next-business-day hardware replacement for the {p}. Best, {r}",
    ),
    (
        "integration",
        "Technical call with {c} at {a}: they need the {p} to integrate with their existing "
        "monitoring stack and single sign-on. Our engineer will send API docs and an SNMP guide.",
        "Hi {c}, here are the API reference and the SNMP/syslog integration guide for the {p}, "
        "plus notes on SAML single sign-on. Best, {r}",
    ),
    (
        "pilot",
        "{a} agreed to a 30-day pilot of the {p} in two locations. {c} will measure throughput "
        "and uptime; success criteria to be confirmed in writing.",
        "Hi {c}, great to kick off the pilot of the {p}. As discussed, success means 99.9% uptime "
        "and a 20% throughput gain over 30 days. Best, {r}",
    ),
    (
        "competitor",
        "{c} ({a}) is also evaluating a competitor's offer that is 15% cheaper. We should stress "
        "total cost of ownership and our three-year warranty on the {p}.",
        "Hi {c}, thanks for being open about the alternative offer. I've summarised the three-year "
        "cost of ownership of the {p}, including warranty and power savings. Best, {r}",
    ),
)


@dataclass
class DemoData:
    """Rows to insert; foreign keys are indexes into the other lists until written."""

    accounts: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    reps: list[dict[str, Any]] = field(default_factory=list)
    deals: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    reminders: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def _at(day: dt.date, rng: random.Random) -> dt.datetime:
    """A working-hours moment (UTC) on `day`."""
    return dt.datetime(
        day.year, day.month, day.day, rng.randint(8, 17), rng.randrange(0, 60, 5), tzinfo=dt.UTC
    )


def generate_demo(seed: int, today: dt.date) -> DemoData:
    """Build the demo rows (pure: no database). Same (seed, today) -> same rows."""
    rng = random.Random(seed)
    data = DemoData()
    origin = _at(today - dt.timedelta(days=540), rng)  # when the CRM "went live"

    for name, sector, country in ACCOUNTS:
        revenue = round(rng.lognormvariate(6.3, 1.1), 2)
        data.accounts.append(
            {
                "name": name,
                "sector": sector,
                "year_established": rng.randint(1978, 2016),
                "revenue_musd": Decimal(str(max(revenue, 12.5))).quantize(Decimal("0.01")),
                "employees": max(40, int(max(revenue, 12.5) * rng.uniform(1.8, 4.5))),
                "office_location": country,
                "parent": SUBSIDIARIES.get(name),
                "created_at": origin,
                "updated_at": origin,
            }
        )

    for name, series, price in PRODUCTS:
        data.products.append(
            {
                "name": name,
                "series": series,
                "list_price": Decimal(price),
                "created_at": origin,
                "updated_at": origin,
            }
        )

    for office, (manager, reps) in OFFICES.items():
        for rep in reps:
            first, last = rep.lower().split(" ", 1)
            data.reps.append(
                {
                    "name": rep,
                    "manager": manager,
                    "regional_office": office,
                    "email": f"{first}.{last.replace(' ', '')}@flowstate-demo.example",
                    "created_at": origin,
                    "updated_at": origin,
                }
            )

    emails: set[str] = set()
    for a_idx, (name, _, _) in enumerate(ACCOUNTS):
        for _ in range(3 if a_idx < 10 else 2):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{first}.{last}@{_slug(name)}.example".lower()
            n = 2
            while email in emails:
                email = f"{first}.{last}{n}@{_slug(name)}.example".lower()
                n += 1
            emails.add(email)
            data.contacts.append(
                {
                    "account": a_idx,
                    "first_name": first,
                    "last_name": last,
                    "title": rng.choice(TITLES),
                    "email": email,
                    "phone": f"+1-{rng.choice(AREA_CODES)}-555-01{rng.randint(0, 99):02d}",
                    "created_at": origin,
                    "updated_at": origin,
                }
            )

    pipeline = load_pipeline()
    open_keys = pipeline.open_keys  # prospecting .. negotiation, in order
    won, lost = pipeline.won_key, pipeline.lost_keys[0]
    # Bigger accounts buy more often: weight accounts by revenue (dampened).
    acc_weights = [float(a["revenue_musd"]) ** 0.5 for a in data.accounts]
    finals = [stage for stage, n in STAGE_MIX.items() for _ in range(n)]
    rng.shuffle(finals)
    for d_idx, final in enumerate(finals, start=1):
        a_idx = rng.choices(range(len(data.accounts)), weights=acc_weights)[0]
        p_idx = rng.choices(range(len(PRODUCTS)), weights=PRODUCT_WEIGHTS)[0]
        r_idx = rng.randrange(len(data.reps))
        price = PRODUCTS[p_idx][2]
        if final in open_keys:
            reached = open_keys[: open_keys.index(final) + 1]
            start = today - dt.timedelta(days=rng.randint(3, 25) + 12 * len(reached) + rng.randint(0, 30))
            end = today
        else:
            if final == won:
                reached = [*open_keys, won]
            else:
                stop = rng.choices(list(LOSS_POINTS), weights=list(LOSS_POINTS.values()))[0]
                reached = [*open_keys[: open_keys.index(stop) + 1], lost]
            start = today - dt.timedelta(days=rng.randint(60, 500))
            end = min(start + dt.timedelta(days=rng.randint(20, 160)), today - dt.timedelta(days=1))
        # Stage entry days, increasing from `start` to `end`.
        span = max((end - start).days, len(reached))
        offsets = sorted(rng.sample(range(1, span + 1), len(reached) - 1))
        days = [start] + [start + dt.timedelta(days=o) for o in offsets]
        if final in (won, lost):
            days[-1] = end
        stamps = [_at(d, rng) for d in days]
        for i in range(1, len(stamps)):  # same-day moves keep their order
            stamps[i] = max(stamps[i], stamps[i - 1] + dt.timedelta(minutes=5))
        # The day it entered Engaging; a deal lost straight from Prospecting was never engaged.
        engage = days[1] if len(reached) > 1 and reached[1] != lost else None
        close = days[-1] if final in (won, lost) else None
        if final == won:
            value: Decimal | None = Decimal(round(price * rng.uniform(0.88, 1.06)))
        elif final == lost:
            value = Decimal(0)
        elif final in ("qualified", "proposal", "negotiation"):
            value = Decimal(round(price * rng.uniform(0.95, 1.0)))
        else:
            value = None
        data.deals.append(
            {
                "external_id": f"DEMO-{d_idx:04d}",
                "account": a_idx,
                "product": p_idx,
                "rep": r_idx,
                "stage": final,
                "engage_date": engage,
                "close_date": close,
                "value": value,
                "created_at": stamps[0],
                "updated_at": stamps[-1],
            }
        )
        prev: str | None = None
        for stage, stamp in zip(reached, stamps, strict=True):
            data.history.append(
                {
                    "deal": d_idx - 1,
                    "from_stage": prev,
                    "to_stage": stage,
                    "changed_at": stamp,
                    "changed_by": data.reps[r_idx]["name"],
                    "note": None if prev is not None else "created",
                }
            )
            prev = stage

    # Reminders on a few open deals: upcoming, one escalated (overdue), one done.
    open_deals = [
        i for i, d in enumerate(data.deals) if d["stage"] in open_keys and d["stage"] != "prospecting"
    ]
    now = _at(today, rng)
    plan = [
        (2, "pending", 0),
        (4, "pending", 0),
        (7, "pending", 0),
        (1, "pending", 0),
        (-3, "escalated", 1),
        (-6, "done", 0),
    ]
    for (days_ahead, status, level), d_idx in zip(plan, rng.sample(open_deals, len(plan)), strict=True):
        target = data.deals[d_idx]
        acc = data.accounts[target["account"]]["name"]
        product = PRODUCTS[target["product"]][0]
        data.reminders.append(
            {
                "rep": target["rep"],
                "account": target["account"],
                "deal": d_idx,
                "due_at": now + dt.timedelta(days=days_ahead),
                "message": f"Follow up with {acc} on {target['external_id']} ({product})",
                "status": status,
                "escalation_level": level,
                "created_at": now + dt.timedelta(days=min(days_ahead, 0) - 5),
                "updated_at": now + dt.timedelta(days=min(days_ahead, 0) - 5),
            }
        )

    # Documents: one call note and one email per account, about one topic, tied to a deal.
    deals_by_account: dict[int, list[int]] = {}
    for i, d in enumerate(data.deals):
        deals_by_account.setdefault(d["account"], []).append(i)
    contacts_by_account: dict[int, list[int]] = {}
    for i, c in enumerate(data.contacts):
        contacts_by_account.setdefault(c["account"], []).append(i)
    topics = [TOPICS[i % len(TOPICS)] for i in range(len(data.accounts))]
    rng.shuffle(topics)
    for a_idx, acc in enumerate(data.accounts):
        topic, note, mail = topics[a_idx]
        doc_deal = rng.choice(deals_by_account[a_idx]) if a_idx in deals_by_account else None
        deal = data.deals[doc_deal] if doc_deal is not None else None
        contact = data.contacts[rng.choice(contacts_by_account[a_idx])]
        rep = data.reps[deal["rep"]]["name"] if deal else data.reps[0]["name"]
        product = PRODUCTS[deal["product"]][0] if deal else PRODUCTS[0][0]
        fill = {
            "a": acc["name"],
            "c": f"{contact['first_name']} {contact['last_name']}",
            "p": product,
            "r": rep,
        }
        when = deal["updated_at"] if deal else now
        for kind, template, offset in (("call_note", note, 0), ("email", mail, 1)):
            stamp = when - dt.timedelta(days=3 - offset)
            data.documents.append(
                {
                    "content": template.format(**fill),
                    "metadata": {
                        "kind": kind,
                        "topic": topic,
                        "author": rep,
                        "contact": fill["c"],
                        "date": stamp.date().isoformat(),
                        "source": "demo",
                    },
                    "account": a_idx,
                    "deal": doc_deal,
                    "created_at": stamp,
                }
            )
            data.events.append(
                {
                    "occurred_at": stamp,
                    "kind": "call.logged" if kind == "call_note" else "email.sent",
                    "actor": rep,
                    "account": a_idx,
                    "deal": doc_deal,
                    "payload": {"topic": topic, "contact": fill["c"]},
                }
            )
    data.events.sort(key=lambda e: e["occurred_at"])
    return data


def _is_empty(session: Session) -> bool:
    return not session.scalar(
        select(
            or_(
                exists().select_from(Account),
                exists().select_from(Contact),
                exists().select_from(Product),
                exists().select_from(SalesRep),
                exists().select_from(Deal),
            )
        )
    )


def _insert(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> list[int]:
    """executemany INSERT ... RETURNING id with ids in the order of `rows`."""
    table = model.__table__
    assert isinstance(table, Table)
    if not rows:
        return []
    stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(stmt, rows).scalars())


def seed_demo(
    engine: Engine,
    seed: int = 42,
    *,
    today: dt.date | None = None,
    embedder: Embedder | None = None,
) -> dict[str, int]:
    """Fill an empty CRM with the demo data of `seed`; returns rows written per table
    (accounts, contacts, products, sales_reps, deals, deal_stage_history, reminders, events,
    documents). Returns {} and writes nothing when the CRM already holds accounts, contacts,
    products, sales reps or deals. One transaction. `today` anchors the dates (default: the
    current UTC date); `embedder` defaults to `get_embedder(get_settings())`.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    with session_scope(engine) as session:
        # The importer's lock: a demo seed and an import never interleave.
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('flowstate.crm.import'))"))
        if not _is_empty(session):
            return {}
        data = generate_demo(seed, today)
        if embedder is None:
            from config.settings import get_settings
            from crm.embeddings import get_embedder

            embedder = get_embedder(get_settings())

        acc_ids = _insert(
            session, Account, [{k: v for k, v in a.items() if k != "parent"} for a in data.accounts]
        )
        by_name = {a["name"]: i for a, i in zip(data.accounts, acc_ids, strict=True)}
        for a, i in zip(data.accounts, acc_ids, strict=True):
            if a["parent"]:
                session.execute(
                    update(Account)
                    .where(Account.id == i)
                    .values(parent_account_id=by_name[a["parent"]], updated_at=a["updated_at"])
                )
        prod_ids = _insert(session, Product, data.products)
        rep_ids = _insert(session, SalesRep, data.reps)
        _insert(
            session,
            Contact,
            [{**_drop(c, "account"), "account_id": acc_ids[c["account"]]} for c in data.contacts],
        )
        deal_ids = _insert(
            session,
            Deal,
            [
                {
                    **_drop(d, "account", "product", "rep"),
                    "account_id": acc_ids[d["account"]],
                    "product_id": prod_ids[d["product"]],
                    "rep_id": rep_ids[d["rep"]],
                }
                for d in data.deals
            ],
        )
        _insert(
            session,
            DealStageHistory,
            [{**_drop(h, "deal"), "deal_id": deal_ids[h["deal"]]} for h in data.history],
        )
        _insert(
            session,
            Reminder,
            [
                {
                    **_drop(r, "rep", "account", "deal"),
                    "rep_id": rep_ids[r["rep"]],
                    "account_id": acc_ids[r["account"]],
                    "deal_id": deal_ids[r["deal"]],
                }
                for r in data.reminders
            ],
        )
        # the open reminders get their workflows (fire, escalate) like any other reminder: the
        # requests are started by the worker's dispatch
        open_reminders = session.execute(
            select(Reminder.id, Reminder.deal_id).where(Reminder.status.in_(("pending", "escalated")))
        ).all()
        for reminder_id, deal_id in open_reminders:
            workflow_runs.request(session, "reminder", reminder_id, deal_id=deal_id, reminder_id=reminder_id)
        vectors = embedder.embed_documents([d["content"] for d in data.documents])
        _insert(
            session,
            Document,
            [
                {
                    **_drop(d, "account", "deal"),
                    "account_id": acc_ids[d["account"]],
                    "deal_id": deal_ids[d["deal"]] if d["deal"] is not None else None,
                    "embedding": v,
                    "embedding_model": embedder.model_name,
                }
                for d, v in zip(data.documents, vectors, strict=True)
            ],
        )
        counts = {
            "accounts": len(acc_ids),
            "contacts": len(data.contacts),
            "products": len(prod_ids),
            "sales_reps": len(rep_ids),
            "deals": len(deal_ids),
            "deal_stage_history": len(data.history),
            "reminders": len(data.reminders),
            "documents": len(data.documents),
            "events": len(data.events) + 1,
        }
        events = [
            {
                **_drop(e, "account", "deal"),
                "account_id": acc_ids[e["account"]],
                "deal_id": deal_ids[e["deal"]] if e["deal"] is not None else None,
            }
            for e in data.events
        ]
        events.append(
            {
                "occurred_at": _at(today, random.Random(seed)),
                "kind": "crm.seed_demo",
                "actor": "seed-demo",
                "account_id": None,
                "deal_id": None,
                "payload": {"seed": seed, "today": today.isoformat(), "counts": counts},
            }
        )
        _insert(session, Event, events)
    return counts


def _drop(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}
