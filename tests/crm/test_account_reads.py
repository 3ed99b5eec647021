"""The one-account reads of an account briefing on the Maven export: each gives what the wider
read it stands in for gives (products won, contacts, recent deals), for all deals and for a
rep's deals only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm.insights import account_deals, account_purchases, products_won
from crm.models import Account, Deal
from crm.repository import account_contacts, list_contacts


@pytest.fixture(scope="module")
def s(maven_db: Engine) -> Iterator[Session]:
    with Session(maven_db) as session:
        yield session


def _sample(s: Session) -> list[int]:
    ids = list(s.scalars(select(Account.id).order_by(Account.id)))
    assert len(ids) >= 40
    return ids[::5]


def _reps(s: Session) -> frozenset[int]:
    return frozenset(s.scalars(select(Deal.rep_id).distinct().order_by(Deal.rep_id).limit(3)))


def test_products_won_is_account_purchases_of_one_account(s: Session) -> None:
    reps = _reps(s)
    seen_won = 0
    for account_id in _sample(s):
        for rep_ids in (None, reps):
            wide = account_purchases(s, [account_id], rep_ids=rep_ids)[0].products_won
            assert products_won(s, account_id, rep_ids=rep_ids) == wide
            seen_won += bool(wide)
    assert seen_won >= 5  # the sample has accounts that won something


def test_account_contacts_are_the_first_page_of_list_contacts(s: Session) -> None:
    for account_id in _sample(s):
        for limit in (1, 3, 50):
            page = list_contacts(s, account_id=account_id, limit=limit)
            assert account_contacts(s, account_id, limit=limit) == page.items


def test_recent_deals_are_limited_and_filtered_in_sql_as_before(s: Session) -> None:
    reps = _reps(s)
    for account_id in _sample(s):
        every = account_deals(s, account_id, limit=10_000)
        assert len(every) >= 3
        assert account_deals(s, account_id, limit=3) == every[:3]
        mine = account_deals(s, account_id, limit=10_000, rep_ids=reps)
        assert mine == [d for d in every if d.rep_id in reps]
