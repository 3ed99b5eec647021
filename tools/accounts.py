"""Accounts, contacts and reps for the crews: profile, contacts, subsidiaries, history, sector
lists, rep profiles. Plain functions over a sync `Session` plus their CrewAI tools."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from crm import analytics, insights, repository
from crm.lookup import get_by_ref
from crm.models import Account
from crm.schemas import AccountBrief, AccountProfile, ContactOut, DealOut, EventOut, RepProfile
from observability.tracing import traced
from tools._base import CRMTool

__all__ = [
    "AccountHistory",
    "AccountHistoryTool",
    "AccountProfileTool",
    "ContactsTool",
    "SectorAccounts",
    "SubsidiariesTool",
    "account_history",
    "account_profile",
    "accounts_in_sector",
    "contacts",
    "parent_account",
    "rep_profile",
    "subsidiaries",
]


@traced()
def account_profile(session: Session, account: int | str) -> AccountProfile:
    """An account (id or exact name) with parent, subsidiaries, contact count and deal metrics.
    Raises NotFound."""
    return analytics.account_profile(session, account)


@traced()
def contacts(session: Session, account: int | str, limit: int = 10) -> list[ContactOut]:
    """Contacts of an account (id or name), by last name; at most `limit`. Raises NotFound."""
    account_id = get_by_ref(session, Account, account).id
    return list(repository.list_contacts(session, account_id=account_id, limit=limit).items)


@traced()
def subsidiaries(session: Session, account: int | str) -> list[AccountBrief]:
    """Direct subsidiaries of an account, sorted by name. Raises NotFound."""
    return analytics.subsidiaries(session, account)


@traced()
def parent_account(session: Session, account: int | str) -> AccountBrief | None:
    """The parent of an account, None for a top-level one. Raises NotFound."""
    return analytics.parent_account(session, account)


class SectorAccounts(BaseModel):
    """The accounts of a sector: `count` and the names (sorted)."""

    sector: str
    count: int
    accounts: list[AccountBrief]


@traced()
def accounts_in_sector(session: Session, sector: str) -> SectorAccounts:
    """Accounts whose sector is `sector` (case-insensitive); count 0 when none."""
    found = insights.accounts_in_sector(session, sector)
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
def account_history(session: Session, account: int | str, limit: int = 5) -> AccountHistory:
    """The last `limit` deals and events of an account (id or name). Raises NotFound."""
    row = get_by_ref(session, Account, account)
    deals = insights.account_deals(session, row.id, limit=limit)
    events = list(repository.list_events(session, account_id=row.id, limit=limit).items)
    return AccountHistory(
        account=AccountBrief(id=row.id, name=row.name, sector=row.sector), deals=deals, events=events
    )


# --- CrewAI tools -----------------------------------------------------------------------------


class AccountArgs(BaseModel):
    account: str = Field(description="account name")


class AccountProfileTool(CRMTool):
    name: str = "account_profile"
    description: str = "Profile of an account: sector, size, revenue, parent, subsidiaries and deal metrics."
    args_schema: type[BaseModel] = AccountArgs

    def _run(self, **kwargs: Any) -> str:
        args = AccountArgs(**kwargs)
        return self.call_in_session(lambda s: account_profile(s, args.account))


class ContactsTool(CRMTool):
    name: str = "account_contacts"
    description: str = "Contacts (name, title, email, phone) at an account."
    args_schema: type[BaseModel] = AccountArgs

    def _run(self, **kwargs: Any) -> str:
        args = AccountArgs(**kwargs)
        return self.call_in_session(lambda s: contacts(s, args.account))


class SubsidiariesTool(CRMTool):
    name: str = "subsidiaries"
    description: str = "Accounts that are direct subsidiaries of an account."
    args_schema: type[BaseModel] = AccountArgs

    def _run(self, **kwargs: Any) -> str:
        args = AccountArgs(**kwargs)
        return self.call_in_session(lambda s: subsidiaries(s, args.account))


class AccountHistoryTool(CRMTool):
    name: str = "account_history"
    description: str = "Recent deals and logged events of an account."
    args_schema: type[BaseModel] = AccountArgs

    def _run(self, **kwargs: Any) -> str:
        args = AccountArgs(**kwargs)
        return self.call_in_session(lambda s: account_history(s, args.account))
