"""What a caller may read and change: the SQL conditions that narrow a list to the caller's scope,
and the checks of one record.

The scope is the deal's owner: `Caller.read_rep_ids` / `act_rep_ids` name the sales reps whose
deals the caller may read / act on (None: every rep, an admin). Every other record follows the
deals it belongs to:

- a deal: readable when its rep is in `read_rep_ids`; changed when its rep is in `act_rep_ids`;
- an account: readable when a readable deal is on it, or when no deal at all is (a prospect
  nobody works yet: anyone may find it, and the rep who just added it reads it back); changed
  under the same rule with `act_rep_ids`. A contact follows its account (one without an account
  is readable by all);
- a reminder, recommendation or outbox message: belongs to its deal's rep, else to its own
  `rep_id`; one that belongs to no rep is for admins only;
- an event: readable through its deal, else through its account, and always by its actor;
- a document: readable through its deal, else through its account; one tied to neither (general
  material: a product sheet) is readable by all;
- an inbox item: seen by its recipient and by whoever acts for its rep.

A record outside what the caller may read is `NotFound`, worded as for a record that does not
exist (its existence is not disclosed); a record the caller may read but not change is `Forbidden`.
Every condition builder returns None for a caller who sees everything (no condition to add).
"""

from __future__ import annotations

from typing import Any, Protocol, Self, TypeVar

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from contracts.identity import Caller
from crm.errors import Forbidden, Inconsistent, NotFound
from crm.models import (
    Account,
    Contact,
    Deal,
    Document,
    Event,
    InboxItem,
    OutboxMessage,
    Recommendation,
    Reminder,
)

RepIds = frozenset[int] | None

#: The records whose owner is "their deal's rep, else their own rep_id".
Owned = type[Reminder] | type[Recommendation] | type[OutboxMessage]


def _account_open(account_id: Any, rep_ids: frozenset[int]) -> ColumnElement[bool]:
    """The account `account_id` (a column or value) has a deal of one of `rep_ids`, or no deal."""
    return or_(
        exists().where(Deal.account_id == account_id, Deal.rep_id.in_(rep_ids)),
        ~exists().where(Deal.account_id == account_id),
    )


def accounts_condition(rep_ids: RepIds) -> ColumnElement[bool] | None:
    """Accounts (`Account`) a caller with these reps' deals may see; None: all."""
    return None if rep_ids is None else _account_open(Account.id, rep_ids)


def contacts_condition(rep_ids: RepIds) -> ColumnElement[bool] | None:
    """Contacts (`Contact`) whose account is visible (or who have none); None: all."""
    if rep_ids is None:
        return None
    return or_(Contact.account_id.is_(None), _account_open(Contact.account_id, rep_ids))


def _owner(model: Owned) -> ColumnElement[Any]:
    deal_rep = select(Deal.rep_id).where(Deal.id == model.deal_id).scalar_subquery()
    return func.coalesce(deal_rep, model.rep_id)


def owned_condition(model: Owned, rep_ids: RepIds) -> ColumnElement[bool] | None:
    """Reminders, recommendations or outbox messages (`model`) that belong to one of `rep_ids`
    (their deal's rep, else their own `rep_id`); None: all."""
    return None if rep_ids is None else _owner(model).in_(rep_ids)


def _deal_of(deal_id: Any, rep_ids: frozenset[int]) -> ColumnElement[bool]:
    return exists().where(Deal.id == deal_id, Deal.rep_id.in_(rep_ids))


def events_condition(caller: Caller) -> ColumnElement[bool] | None:
    """Events the caller may read: through their deal, else their account, and their own."""
    rep_ids = caller.read_rep_ids
    if rep_ids is None:
        return None
    return or_(
        and_(Event.deal_id.is_not(None), _deal_of(Event.deal_id, rep_ids)),
        and_(
            Event.deal_id.is_(None), Event.account_id.is_not(None), _account_open(Event.account_id, rep_ids)
        ),
        Event.actor == caller.actor,
    )


def documents_condition(rep_ids: RepIds) -> ColumnElement[bool] | None:
    """Documents readable through their deal, else their account; tied to neither: by all."""
    if rep_ids is None:
        return None
    return or_(
        and_(Document.deal_id.is_not(None), _deal_of(Document.deal_id, rep_ids)),
        and_(
            Document.deal_id.is_(None),
            Document.account_id.is_not(None),
            _account_open(Document.account_id, rep_ids),
        ),
        and_(Document.deal_id.is_(None), Document.account_id.is_(None)),
    )


def inbox_condition(caller: Caller) -> ColumnElement[bool] | None:
    """Inbox items the caller sees: those for them (by name) and those of the reps they act for
    (a manager: the team's); None: all (an admin)."""
    if caller.act_rep_ids is None:
        return None
    mine = func.lower(InboxItem.recipient) == caller.person.strip().lower()
    return or_(mine, InboxItem.rep_id.in_(caller.act_rep_ids)) if caller.act_rep_ids else mine


# --- one record ------------------------------------------------------------------------------


def readable_deal(session: Session, caller: Caller, deal_id: int) -> int | None:
    """The rep of deal `deal_id` when the caller may read it. Raises NotFound("deal", id) when it
    does not exist or is outside the caller's reading."""
    row = session.execute(select(Deal.id, Deal.rep_id).where(Deal.id == deal_id)).first()
    if row is None or not caller.may_read_rep(row.rep_id):
        raise NotFound("deal", deal_id)
    rep_id: int | None = row.rep_id
    return rep_id


def check_deal_action(session: Session, caller: Caller, deal_id: int) -> int | None:
    """The rep of deal `deal_id` when the caller may change it. Raises NotFound (see
    `readable_deal`), Forbidden when the caller reads it but does not act for its rep."""
    rep_id = readable_deal(session, caller, deal_id)
    if not caller.may_act_for_rep(rep_id):
        raise Forbidden(f"deal {deal_id} is not yours to change (it belongs to another rep)")
    return rep_id


def check_rep_action(caller: Caller, rep_id: int | None, field: str = "rep_id") -> None:
    """Forbidden(field) unless the caller acts for `rep_id` (a rep: themselves; a manager: their
    team; None, no owner: admins only)."""
    if not caller.may_act_for_rep(rep_id):
        who = "no rep" if rep_id is None else f"rep {rep_id}"
        raise Forbidden(f"{field}: you do not act for {who}", field=field)


def _account_exists(session: Session, account_id: int) -> bool:
    return session.scalar(select(Account.id).where(Account.id == account_id)) is not None


def account_readable(session: Session, account_id: int, rep_ids: RepIds) -> bool:
    """True when the account `account_id` is readable with these reps' deals (None: all): a deal
    of theirs is on it, or no deal at all. An unknown id is "readable" here (there is nothing to
    hide); callers that need it to exist look it up first."""
    return rep_ids is None or bool(session.scalar(select(_account_open(account_id, rep_ids))))


def readable_account(session: Session, caller: Caller, account_id: int) -> None:
    """Raises NotFound("account", id) when the account does not exist or is outside the caller's
    reading."""
    if not _account_exists(session, account_id):
        raise NotFound("account", account_id)
    if not account_readable(session, account_id, caller.read_rep_ids):
        raise NotFound("account", account_id)


def check_account_action(session: Session, caller: Caller, account_id: int) -> None:
    """Raises NotFound (see `readable_account`), Forbidden when the caller reads the account but
    has no deal on it to act for."""
    readable_account(session, caller, account_id)
    if caller.act_rep_ids is not None and not session.scalar(
        select(_account_open(account_id, caller.act_rep_ids))
    ):
        raise Forbidden(f"account {account_id} is worked by another rep")


def check_account_ref(session: Session, caller: Caller, account_id: int, field: str = "account_id") -> None:
    """An account id in a request body: one outside the caller's reading is answered like an
    unknown id (Inconsistent(field), a 409, as the repository answers for a missing record)."""
    try:
        readable_account(session, caller, account_id)
    except NotFound:
        raise Inconsistent(field, f"no account with id {account_id}") from None


def check_deal_ref(session: Session, caller: Caller, deal_id: int, field: str = "deal_id") -> int | None:
    """A deal id in a request body that the caller writes something onto (a reminder, an event,
    a document): returns the deal's rep. Inconsistent(field) when the deal is outside the
    caller's reading (as for an unknown id); Forbidden(field) when they do not act for its rep."""
    try:
        rep_id = readable_deal(session, caller, deal_id)
    except NotFound:
        raise Inconsistent(field, f"no deal with id {deal_id}") from None
    if not caller.may_act_for_rep(rep_id):
        raise Forbidden(f"{field}: deal {deal_id} belongs to a rep you do not act for", field=field)
    return rep_id


def check_contact(session: Session, caller: Caller, contact_id: int, *, act: bool = False) -> None:
    """Raises NotFound("contact", id) when the contact does not exist or its account is outside
    the caller's reading; with `act`, Forbidden when the caller may not change its account."""
    row = session.execute(select(Contact.account_id).where(Contact.id == contact_id)).first()
    if row is None:
        raise NotFound("contact", contact_id)
    account_id: int | None = row.account_id
    if account_id is None:
        return
    try:
        (check_account_action if act else readable_account)(session, caller, account_id)
    except NotFound:
        raise NotFound("contact", contact_id) from None


def check_owned(
    session: Session, caller: Caller, model: Owned, row_id: int, entity: str, *, act: bool = False
) -> None:
    """For a reminder, recommendation or outbox message: raises NotFound(entity, id) when it does
    not exist or belongs to a rep outside the caller's reading; with `act`, Forbidden when the
    caller does not act for its rep."""
    row = session.execute(select(model.id, _owner(model).label("owner")).where(model.id == row_id)).first()
    if row is None or not caller.may_read_rep(row.owner):
        raise NotFound(entity, row_id)
    if act and not caller.may_act_for_rep(row.owner):
        raise Forbidden(f"{entity} {row_id} belongs to another rep")


def check_inbox_item(session: Session, caller: Caller, item_id: int) -> None:
    """May the caller decide inbox item `item_id`? Raises NotFound("inbox item", id) when it does
    not exist or is not theirs to see; Forbidden when they see it but do not act for its deal's
    (or its) rep. An item tied to no rep is decided by its recipient (and admins)."""
    row = session.execute(
        select(InboxItem.recipient, InboxItem.rep_id, InboxItem.deal_id).where(InboxItem.id == item_id)
    ).first()
    cond = inbox_condition(caller)
    visible = row is not None and (
        cond is None or bool(session.scalar(select(cond).where(InboxItem.id == item_id)))
    )
    if row is None or not visible:
        raise NotFound("inbox item", item_id)
    if row.deal_id is not None:
        rep_id = session.scalar(select(Deal.rep_id).where(Deal.id == row.deal_id))
    else:
        rep_id = row.rep_id
    mine = row.recipient.strip().lower() == caller.person.strip().lower()
    if rep_id is None and not mine and caller.act_rep_ids is not None:
        raise Forbidden(f"inbox item {item_id} is for {row.recipient}")
    if rep_id is not None and not caller.may_act_for_rep(rep_id):
        raise Forbidden(f"inbox item {item_id} concerns a deal you do not act for")


__all__ = [
    "Owned",
    "RepIds",
    "account_readable",
    "accounts_condition",
    "check_account_action",
    "check_account_ref",
    "check_contact",
    "check_deal_action",
    "check_deal_ref",
    "check_inbox_item",
    "check_owned",
    "check_rep_action",
    "contacts_condition",
    "documents_condition",
    "events_condition",
    "inbox_condition",
    "owned_condition",
    "readable_account",
    "readable_deal",
]


class _OwnedRefs(Protocol):
    deal_id: int | None
    rep_id: int | None
    account_id: int | None

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self: ...


R = TypeVar("R", bound=_OwnedRefs)


def scoped_refs(session: Session, caller: Caller, body: R) -> R:
    """The body of a new reminder or recommendation, checked against the caller's scope: its deal
    must be one the caller acts for; without a deal, its rep defaults to the caller's own and
    must be one they act for; its account must be readable. Raises Forbidden (403) or Conflict
    (409, an id outside reading) naming the field."""
    data = body
    if body.deal_id is not None:
        check_deal_ref(session, caller, body.deal_id)
    elif body.rep_id is None:
        data = body.model_copy(update={"rep_id": caller.rep_id})
    if data.rep_id is not None or body.deal_id is None:
        check_rep_action(caller, data.rep_id)
    if body.account_id is not None:
        check_account_ref(session, caller, body.account_id)
    return data
