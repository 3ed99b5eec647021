"""Accounts, contacts and reps for the crews: profile, contacts, subsidiaries, history, sector
lists, purchases, rep profiles and rep lookup. Plain functions over a sync `Session`; the CRM
types they return are re-exported here for the crews."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.orm import Session

from crm import analytics, insights, repository
from crm.access import account_readable
from crm.errors import NotFound
from crm.insights import account_purchases, products_won
from crm.lookup import find_reps, get_by_ref
from crm.models import Account
from crm.schemas import AccountBrief, AccountProfile, ContactOut, DealOut, EventOut, RepProfile
from observability.tracing import traced

__all__ = [
    "AccountBrief",
    "AccountHistory",
    "AccountProfile",
    "ContactOut",
    "RepProfile",
    "SectorAccounts",
    "account_history",
    "account_profile",
    "account_purchases",
    "account_readable",
    "accounts_in_sector",
    "contacts",
    "find_reps",
    "parent_account",
    "products_won",
    "recent_deals",
    "rep_profile",
    "subsidiaries",
]


@traced()
def account_profile(
    session: Session, account: int | str, *, rep_ids: frozenset[int] | None = None
) -> AccountProfile:
    """An account (id or exact name) with parent, subsidiaries, contact count and deal metrics
    (of the deals of `rep_ids` only: the caller's `read_rep_ids`; None: all). Raises NotFound."""
    return analytics.account_profile(session, account, rep_ids=rep_ids)


@traced()
def contacts(
    session: Session, account: int | str, limit: int = 10, *, rep_ids: frozenset[int] | None = None
) -> list[ContactOut]:
    """Contacts of an account (id or name), by last name; at most `limit`. Raises NotFound, also
    when `rep_ids` (the caller's `read_rep_ids`) may not read the account."""
    account_id = get_by_ref(session, Account, account).id
    if not account_readable(session, account_id, rep_ids):
        raise NotFound("account", account)
    return repository.account_contacts(session, account_id, limit=limit)


@traced()
def subsidiaries(
    session: Session, account: int | str, *, rep_ids: frozenset[int] | None = None
) -> list[AccountBrief]:
    """Direct subsidiaries of an account, sorted by name (those `rep_ids` may read). Raises
    NotFound."""
    return analytics.subsidiaries(session, account, rep_ids=rep_ids)


@traced()
def parent_account(
    session: Session, account: int | str, *, rep_ids: frozenset[int] | None = None
) -> AccountBrief | None:
    """The parent of an account, None for a top-level one (or one `rep_ids` may not read).
    Raises NotFound."""
    return analytics.parent_account(session, account, rep_ids=rep_ids)


class SectorAccounts(BaseModel):
    """The accounts of a sector: `count` and the names (sorted)."""

    sector: str
    count: int
    accounts: list[AccountBrief]


@traced()
def accounts_in_sector(
    session: Session, sector: str, *, rep_ids: frozenset[int] | None = None
) -> SectorAccounts:
    """Accounts whose sector is `sector` (case-insensitive) that `rep_ids` may read (None: all);
    count 0 when none."""
    found = insights.accounts_in_sector(session, sector, rep_ids=rep_ids)
    return SectorAccounts(sector=sector, count=len(found), accounts=found)


@traced()
def rep_profile(session: Session, rep: int | str) -> RepProfile:
    """A sales rep with manager, regional office, teammates and deal metrics. Raises NotFound."""
    return analytics.rep_profile(session, rep)


class AccountHistory(BaseModel):
    """Recent deals (most recent first) and recent events of an account."""

    account: AccountBrief
    deals: list[DealOut]
    events: list[EventOut]


@traced()
def recent_deals(
    session: Session, account_id: int, limit: int = 5, *, rep_ids: frozenset[int] | None = None
) -> list[DealOut]:
    """The last `limit` deals of an account (close date, else engage date, newest first): the
    deals of `account_history` without its events; only the deals of `rep_ids` (the caller's
    `read_rep_ids`; None: all)."""
    return insights.account_deals(session, account_id, limit=limit, rep_ids=rep_ids)


@traced()
def account_history(
    session: Session, account: int | str, limit: int = 5, *, rep_ids: frozenset[int] | None = None
) -> AccountHistory:
    """The last `limit` deals and events of an account (id or name); with `rep_ids` (the caller's
    `read_rep_ids`), only those reps' deals and the events of those deals or of no deal.
    Raises NotFound."""
    row = get_by_ref(session, Account, account)
    if rep_ids is None:
        deals = insights.account_deals(session, row.id, limit=limit)
        events = list(repository.list_events(session, account_id=row.id, limit=limit).items)
    else:
        # all of the caller's deals on the account (tens, not thousands): their ids pick the events
        mine = insights.account_deals(session, row.id, limit=10_000, rep_ids=rep_ids)
        ids = {d.id for d in mine}
        listed = repository.list_events(session, account_id=row.id, limit=10 * limit).items
        deals, events = mine[:limit], [e for e in listed if e.deal_id is None or e.deal_id in ids][:limit]
    return AccountHistory(
        account=AccountBrief(id=row.id, name=row.name, sector=row.sector), deals=deals, events=events
    )
