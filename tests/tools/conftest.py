"""Fixtures of the tool tests (and of the crew tests, which import them): a small CRM whose
figures are known by hand, and the entities a resolver would give for it.

The CRM (`crm_data`), all deals in 2017:

| deal     | account | product     | rep | stage       | engaged    | closed     | value |
|----------|---------|-------------|-----|-------------|------------|------------|-------|
| D0000001 | Acme    | GTX Pro     | Ann | won         | 2017-01-10 | 2017-02-09 | 5000  |
| D0000002 | Acme    | GTX Basic   | Ann | won         | 2017-03-01 | 2017-03-21 | 600   |
| D0000003 | Acme    | MG Advanced | Ann | lost        | 2017-02-01 | 2017-02-20 | 0     |
| D0000004 | Betaco  | GTX Pro     | Bob | won         | 2017-04-01 | 2017-05-01 | 4500  |
| D0000005 | Betaco  | GTX Basic   | Bob | engaging    | 2017-06-01 |            |       |
| D0000006 | Gammaco | MG Advanced | Cy  | engaging    | 2017-03-15 |            |       |
| D0000007 | -       | GTX Basic   | Cy  | prospecting |            |            |       |
| D0000008 | Gammaco | GTX Pro     | Cy  | won         | 2017-05-10 | 2017-06-09 | 4800  |

Reps: Ann Alpha and Bob Beta (manager Mia Manager, West), Cy Gamma (manager Nat Boss, East).
Accounts: Acme (technology, 2,822 employees), Betaco (retail, 500, subsidiary of Acme),
Gammaco (retail, 1,500), Deltaco (software, 100, no deals). Contact: Dana Diaz at Acme.
So: Ann won 2, lost 1 (win rate 66.7%), revenue $5,600, average won $2,800, largest $5,000,
average cycle 25.0 days; West office win rate 75.0%; top product by revenue GTX Pro ($14,300);
deals engaged in March 2017: 2; reference date 2017-06-09.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from contracts import Entities, EntityRef, Period
from crm.db import session_scope
from crm.repository import create_account, create_contact, create_deal, create_product, create_rep
from crm.schemas import AccountCreate, ContactCreate, DealCreate, ProductCreate, SalesRepCreate

DEALS: list[tuple[str, str | None, str, str, str, str | None, str | None, float | None]] = [
    ("D0000001", "Acme", "GTX Pro", "Ann Alpha", "won", "2017-01-10", "2017-02-09", 5000),
    ("D0000002", "Acme", "GTX Basic", "Ann Alpha", "won", "2017-03-01", "2017-03-21", 600),
    ("D0000003", "Acme", "MG Advanced", "Ann Alpha", "lost", "2017-02-01", "2017-02-20", 0),
    ("D0000004", "Betaco", "GTX Pro", "Bob Beta", "won", "2017-04-01", "2017-05-01", 4500),
    ("D0000005", "Betaco", "GTX Basic", "Bob Beta", "engaging", "2017-06-01", None, None),
    ("D0000006", "Gammaco", "MG Advanced", "Cy Gamma", "engaging", "2017-03-15", None, None),
    ("D0000007", None, "GTX Basic", "Cy Gamma", "prospecting", None, None, None),
    ("D0000008", "Gammaco", "GTX Pro", "Cy Gamma", "won", "2017-05-10", "2017-06-09", 4800),
]


class CRM:
    """Ids of the fixture's records by name (`account`, `rep`, `product`, `deal`, `contact`)."""

    def __init__(self) -> None:
        self.account: dict[str, int] = {}
        self.rep: dict[str, int] = {}
        self.product: dict[str, int] = {}
        self.deal: dict[str, int] = {}
        self.contact: dict[str, int] = {}

    def ref(self, kind: str, key: str, mention: str | None = None) -> EntityRef:
        """An `EntityRef` as the resolver would give it."""
        table: dict[str, int] = getattr(self, kind, {})
        return EntityRef(kind=kind, key=key, id=table.get(key), mention=mention or key)  # type: ignore[arg-type]

    def entities(self, *refs: tuple[str, str], period: tuple[str, str, str] | None = None) -> Entities:
        """Entities of (kind, key) pairs, plus an optional period (start, end exclusive, label)."""
        p = Period(start=period[0], end=period[1], label=period[2]) if period else None
        return Entities(items=[self.ref(kind, key) for kind, key in refs], period=p)


@pytest.fixture
def crm_data(clean_db: Engine) -> CRM:
    """The small CRM of the module docstring, on a clean database."""
    ids = CRM()
    with session_scope(clean_db) as s:
        for name, series, price in (
            ("GTX Basic", "GTX", 550),
            ("GTX Pro", "GTX", 4821),
            ("MG Advanced", "MG", 3393),
        ):
            ids.product[name] = create_product(
                s, ProductCreate(name=name, series=series, list_price=price)
            ).id
        for name, manager, office in (
            ("Ann Alpha", "Mia Manager", "West"),
            ("Bob Beta", "Mia Manager", "West"),
            ("Cy Gamma", "Nat Boss", "East"),
        ):
            ids.rep[name] = create_rep(
                s, SalesRepCreate(name=name, manager=manager, regional_office=office)
            ).id
        acme = create_account(
            s,
            AccountCreate(
                name="Acme",
                sector="technology",
                employees=2822,
                revenue_musd=1100.04,
                year_established=1996,
                office_location="United States",
            ),
        )
        ids.account["Acme"] = acme.id
        for name, sector, employees, parent in (
            ("Betaco", "retail", 500, acme.id),
            ("Gammaco", "retail", 1500, None),
            ("Deltaco", "software", 100, None),
        ):
            ids.account[name] = create_account(
                s, AccountCreate(name=name, sector=sector, employees=employees, parent_account_id=parent)
            ).id
        ids.contact["Dana Diaz"] = create_contact(
            s,
            ContactCreate(
                account_id=acme.id,
                first_name="Dana",
                last_name="Diaz",
                title="Head of Purchasing",
                email="dana.diaz@acme.example",
            ),
        ).id
        for ext, account, product, rep, stage, engaged, closed, value in DEALS:
            ids.deal[ext] = create_deal(
                s,
                DealCreate(
                    external_id=ext,
                    account_id=ids.account[account] if account else None,
                    product_id=ids.product[product],
                    rep_id=ids.rep[rep],
                    stage=stage,
                    engage_date=dt.date.fromisoformat(engaged) if engaged else None,
                    close_date=dt.date.fromisoformat(closed) if closed else None,
                    value=value,
                    created_by="import",  # history as an import records it: dated by the deal, not now
                ),
                today=dt.date(2017, 6, 9),
            ).id
    return ids
