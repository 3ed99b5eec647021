"""The one-account reads of an account briefing on the Maven export: each gives what the wider
read it stands in for gives (the account's view, products won, contacts, recent deals), for all
deals and for a rep's deals only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from crm.analytics import account_profile
from crm.insights import account_deals, account_purchases, products_won
from crm.models import Account, Deal
from crm.repository import account_contacts, get_account, list_contacts


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


def test_account_profile_shows_the_account_as_get_account_and_reads_each_account_once(
    maven_db: Engine,
) -> None:
    with Session(maven_db) as session:
        children = list(
            session.scalars(
                select(Account.id).where(Account.parent_account_id.is_not(None)).order_by(Account.id)
            )
        )
        tops = list(session.scalars(select(Account.id).where(Account.parent_account_id.is_(None)).limit(3)))
    assert children, "the export has subsidiaries"
    for account_id in [*children[:5], *tops]:
        statements: list[str] = []

        def record(
            _conn: Any, _cursor: Any, statement: str, *_args: Any, _into: list[str] = statements
        ) -> None:
            _into.append(statement)

        with Session(maven_db) as session:
            event.listen(maven_db, "before_cursor_execute", record)
            try:
                profile = account_profile(session, account_id)
            finally:
                event.remove(maven_db, "before_cursor_execute", record)
            assert profile.account == get_account(session, account_id)
            if account_id in children:
                assert profile.parent is not None and profile.account.parent_name == profile.parent.name
        by_id = [st for st in statements if "FROM accounts" in st and "accounts.id =" in st]
        # the account, and its parent when it has one: each read by key once
        assert len(by_id) == (2 if account_id in children else 1), by_id
