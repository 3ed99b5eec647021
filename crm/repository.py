"""Reads and writes of CRM records over a sync `Session` (the caller owns the transaction).

Every function returns pydantic models from `crm.schemas` (detached, safe to use after the session
closes) and raises `crm.errors`: `NotFound(entity, id)` for an unknown id in the path,
`Invalid(field, reason)` for a value wrong in itself, `Inconsistent(field, reason)` (an Invalid and
a Conflict) for a reference to a record or stage that does not exist and a value the deal's stage
forbids, `Conflict(reason)` for duplicates and pipeline rule violations. A function that raises may have
flushed partial work: the caller rolls the transaction back (as `session_scope` and the API do).

Lists return `Page[...]` with a stable order (a unique column last) and `total` = rows matching.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from config.files import StageDef, load_pipeline
from crm import workflow_runs
from crm.errors import Conflict, Inconsistent, Invalid, NotFound
from crm.filters import DealFilter, deal_conditions, deal_select
from crm.models import (
    MAX_STORED_ID,
    Account,
    Contact,
    Deal,
    DealStageHistory,
    Event,
    Product,
    Recommendation,
    Reminder,
    SalesRep,
)
from crm.schemas import (
    AccountCreate,
    AccountOut,
    AccountUpdate,
    ContactCreate,
    ContactOut,
    ContactUpdate,
    DealCreate,
    DealOut,
    DealStatus,
    DealUpdate,
    EventCreate,
    EventOut,
    Page,
    ProductCreate,
    ProductOut,
    ProductUpdate,
    RecommendationCreate,
    RecommendationOut,
    RecommendationUpdate,
    ReminderCreate,
    ReminderOut,
    ReminderUpdate,
    SalesRepCreate,
    SalesRepOut,
    SalesRepUpdate,
    StageChangeOut,
)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

MAX_LIMIT = 500
DEAL_SORTS = ("id", "engage_date", "close_date", "value", "updated_at")

_REFS: dict[str, tuple[type[Any], str]] = {
    "account_id": (Account, "account"),
    "product_id": (Product, "product"),
    "rep_id": (SalesRep, "sales rep"),
    "deal_id": (Deal, "deal"),
    "parent_account_id": (Account, "account"),
}


# --- helpers --------------------------------------------------------------------------------


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid("limit", f"must be between 1 and {MAX_LIMIT}, got {limit}")
    if offset < 0:
        raise Invalid("offset", f"must be 0 or more, got {offset}")


def _count(session: Session, stmt: Select[*Ts]) -> int:
    return int(session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)


def _money(v: float | None) -> Decimal | None:
    """A JSON number as an exact amount in cents (what Numeric(.., 2) stores)."""
    return None if v is None else Decimal(str(v)).quantize(Decimal("0.01"))


def _f(v: Decimal | None) -> float | None:
    return None if v is None else float(v)


def _exists(session: Session, model: type[Any], id: int) -> bool:
    return 1 <= id <= MAX_STORED_ID and session.get(model, id) is not None


def _check_refs(session: Session, fields: dict[str, Any]) -> None:
    """Inconsistent(field) for each `*_id` that names no record."""
    for field, value in fields.items():
        if field in _REFS and value is not None:
            model, entity = _REFS[field]
            if not _exists(session, model, value):
                raise Inconsistent(field, f"no {entity} with id {value}")


def _not_null(fields: dict[str, Any], *names: str) -> None:
    for name in names:
        if name in fields and fields[name] is None:
            raise Invalid(name, "may not be null")


def _flush(session: Session) -> None:
    """Flush, turning a unique/check violation the pre-checks missed into Conflict."""
    try:
        session.flush()
    except IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        detail = getattr(diag, "message_detail", None) or getattr(diag, "message_primary", None)
        raise Conflict(f"the change violates a database rule: {detail or exc.orig}") from None


def _name_taken(session: Session, model: Any, name: str, own_id: int | None = None) -> bool:
    stmt = select(model.id).where(func.lower(model.name) == name.lower())
    if own_id is not None:
        stmt = stmt.where(model.id != own_id)
    return session.scalar(stmt.limit(1)) is not None


def _stored_id(id: int, entity: str) -> int:
    """`id` if a row can have it, else NotFound(entity, id) (before any query sees it)."""
    if not 1 <= id <= MAX_STORED_ID:
        raise NotFound(entity, id)
    return id


def _get(session: Session, model: type[T], id: int, entity: str) -> T:
    row = session.get(model, _stored_id(id, entity))
    if row is None:
        raise NotFound(entity, id)
    return row


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


def _event(
    session: Session,
    kind: str,
    *,
    actor: str | None = None,
    account_id: int | None = None,
    deal_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> Event:
    ev = Event(kind=kind, actor=actor, account_id=account_id, deal_id=deal_id, payload=payload or {})
    session.add(ev)
    return ev


# --- accounts -------------------------------------------------------------------------------

_Parent = aliased(Account)


def _account_select() -> Select[Account, str | None]:
    return select(Account, _Parent.name).outerjoin(_Parent, Account.parent_account_id == _Parent.id)


def account_out(account: Account, parent_name: str | None) -> AccountOut:
    """The API view of an account row, with its parent's name (None: a top-level account)."""
    out = AccountOut.model_validate(account)
    out.parent_name = parent_name
    return out


def list_accounts(
    session: Session,
    *,
    q: str | None = None,
    sector: str | None = None,
    parent_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    scope: ColumnElement[bool] | None = None,
) -> Page[AccountOut]:
    """Accounts ordered by name (case-insensitive). `q`: case-insensitive substring of the name; `sector`:
    case-insensitive exact; `parent_id`: direct subsidiaries of that account; `scope`: the
    caller's (`crm.access.accounts_condition`)."""
    _check_page(limit, offset)
    stmt = _account_select()
    if scope is not None:
        stmt = stmt.where(scope)
    if q:
        stmt = stmt.where(Account.name.icontains(q.strip(), autoescape=True))
    if sector:
        stmt = stmt.where(func.lower(Account.sector) == sector.strip().lower())
    if parent_id is not None:
        stmt = stmt.where(Account.parent_account_id == parent_id)
    total = _count(session, stmt)
    rows = session.execute(
        stmt.order_by(func.lower(Account.name), Account.id).limit(limit).offset(offset)
    ).all()
    return Page(items=[account_out(a, p) for a, p in rows], total=total, limit=limit, offset=offset)


def get_account(session: Session, account_id: int) -> AccountOut:
    """One account with its parent's name; NotFound("account", id)."""
    row = session.execute(_account_select().where(Account.id == _stored_id(account_id, "account"))).first()
    if row is None:
        raise NotFound("account", account_id)
    return account_out(row[0], row[1])


def _check_parent(session: Session, account_id: int | None, parent_id: int | None) -> None:
    if parent_id is None:
        return
    _check_refs(session, {"parent_account_id": parent_id})
    # Walk up from the new parent: meeting the account itself means a cycle.
    seen: set[int] = set()
    cur: int | None = parent_id
    while cur is not None and cur not in seen:
        if cur == account_id:
            raise Inconsistent("parent_account_id", "an account cannot be its own parent or ancestor")
        seen.add(cur)
        cur = session.scalar(select(Account.parent_account_id).where(Account.id == cur))


def create_account(session: Session, data: AccountCreate) -> AccountOut:
    """A new account. Conflict if the name is taken (case-insensitive); Invalid("parent_account_id")
    if the parent does not exist."""
    if _name_taken(session, Account, data.name):
        raise Conflict(f"an account named {data.name!r} already exists")
    _check_parent(session, None, data.parent_account_id)
    fields = data.model_dump()
    fields["revenue_musd"] = _money(fields["revenue_musd"])
    account = Account(**fields)
    session.add(account)
    _flush(session)
    return get_account(session, account.id)


def update_account(session: Session, account_id: int, data: AccountUpdate) -> AccountOut:
    """Change the fields present in `data`. NotFound, Conflict (name taken), Invalid (null name,
    unknown parent, parent cycle)."""
    account = _get(session, Account, account_id, "account")
    fields = data.model_dump(exclude_unset=True)
    _not_null(fields, "name")
    if "name" in fields and _name_taken(session, Account, fields["name"], account_id):
        raise Conflict(f"an account named {fields['name']!r} already exists")
    if "parent_account_id" in fields:
        _check_parent(session, account_id, fields["parent_account_id"])
    if "revenue_musd" in fields:
        fields["revenue_musd"] = _money(fields["revenue_musd"])
    for k, v in fields.items():
        setattr(account, k, v)
    _flush(session)
    session.refresh(account)
    return get_account(session, account_id)


# --- contacts -------------------------------------------------------------------------------


def _contact_out(contact: Contact, account_name: str | None) -> ContactOut:
    out = ContactOut.model_validate(contact)
    out.account_name = account_name
    return out


def _contact_select() -> Select[Contact, str | None]:
    return select(Contact, Account.name).outerjoin(Account, Contact.account_id == Account.id)


def list_contacts(
    session: Session,
    *,
    account_id: int | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
    scope: ColumnElement[bool] | None = None,
) -> Page[ContactOut]:
    """Contacts ordered by last name, first name, id. `q`: substring of name or email; `scope`:
    the caller's (`crm.access.contacts_condition`)."""
    _check_page(limit, offset)
    stmt = _contact_select()
    if scope is not None:
        stmt = stmt.where(scope)
    if account_id is not None:
        stmt = stmt.where(Contact.account_id == account_id)
    if q:
        t = q.strip()
        stmt = stmt.where(
            or_(
                Contact.first_name.icontains(t, autoescape=True),
                Contact.last_name.icontains(t, autoescape=True),
                Contact.email.icontains(t, autoescape=True),
            )
        )
    total = _count(session, stmt)
    return Page(items=_contact_rows(session, stmt, limit, offset), total=total, limit=limit, offset=offset)


def account_contacts(session: Session, account_id: int, *, limit: int = 50) -> list[ContactOut]:
    """The first `limit` contacts of an account in `list_contacts`' order, without the page's
    total (one query, not two). Invalid("limit") for a limit out of range."""
    _check_page(limit, 0)
    return _contact_rows(session, _contact_select().where(Contact.account_id == account_id), limit, 0)


def _contact_rows(
    session: Session, stmt: Select[Contact, str | None], limit: int, offset: int
) -> list[ContactOut]:
    order = (func.lower(Contact.last_name), func.lower(Contact.first_name), Contact.id)
    rows = session.execute(stmt.order_by(*order).limit(limit).offset(offset)).all()
    return [_contact_out(c, n) for c, n in rows]


def get_contact(session: Session, contact_id: int) -> ContactOut:
    """One contact with its account's name; NotFound("contact", id)."""
    row = session.execute(_contact_select().where(Contact.id == _stored_id(contact_id, "contact"))).first()
    if row is None:
        raise NotFound("contact", contact_id)
    return _contact_out(row[0], row[1])


def contact_full_names(session: Session) -> list[str]:
    """Every contact's full name, "First Last" as stored (distinct, in no particular order): the
    people's names that trace masking hides (`observability.masking.set_name_loader`)."""
    rows = session.execute(select(Contact.first_name, Contact.last_name).distinct())
    return [f"{first} {last}" for first, last in rows]


def _email_taken(session: Session, email: str | None, own_id: int | None = None) -> bool:
    if email is None:
        return False
    stmt = select(Contact.id).where(func.lower(Contact.email) == email.lower())
    if own_id is not None:
        stmt = stmt.where(Contact.id != own_id)
    return session.scalar(stmt.limit(1)) is not None


def create_contact(session: Session, data: ContactCreate) -> ContactOut:
    """A new contact. Invalid("account_id") for an unknown account; Conflict if the email is taken."""
    _check_refs(session, {"account_id": data.account_id})
    if _email_taken(session, data.email):
        raise Conflict(f"a contact with email {data.email!r} already exists")
    contact = Contact(**data.model_dump())
    session.add(contact)
    _flush(session)
    return get_contact(session, contact.id)


def update_contact(session: Session, contact_id: int, data: ContactUpdate) -> ContactOut:
    """Change the fields present in `data` (see `create_contact` for the errors)."""
    contact = _get(session, Contact, contact_id, "contact")
    fields = data.model_dump(exclude_unset=True)
    _not_null(fields, "first_name", "last_name")
    _check_refs(session, fields)
    if "email" in fields and _email_taken(session, fields["email"], contact_id):
        raise Conflict(f"a contact with email {fields['email']!r} already exists")
    for k, v in fields.items():
        setattr(contact, k, v)
    _flush(session)
    session.refresh(contact)
    return get_contact(session, contact_id)


# --- products -------------------------------------------------------------------------------


def list_products(
    session: Session, *, series: str | None = None, limit: int = 50, offset: int = 0
) -> Page[ProductOut]:
    """Products ordered by name; `series` case-insensitive exact."""
    _check_page(limit, offset)
    stmt = select(Product)
    if series:
        stmt = stmt.where(func.lower(Product.series) == series.strip().lower())
    total = _count(session, stmt)
    rows = session.scalars(
        stmt.order_by(func.lower(Product.name), Product.id).limit(limit).offset(offset)
    ).all()
    return Page(items=[ProductOut.model_validate(p) for p in rows], total=total, limit=limit, offset=offset)


def get_product(session: Session, product_id: int) -> ProductOut:
    """One product; NotFound("product", id)."""
    return ProductOut.model_validate(_get(session, Product, product_id, "product"))


def create_product(session: Session, data: ProductCreate) -> ProductOut:
    """A new product; Conflict if the name is taken (case-insensitive)."""
    if _name_taken(session, Product, data.name):
        raise Conflict(f"a product named {data.name!r} already exists")
    fields = data.model_dump()
    fields["list_price"] = _money(fields["list_price"])
    product = Product(**fields)
    session.add(product)
    _flush(session)
    session.refresh(product)
    return ProductOut.model_validate(product)


def update_product(session: Session, product_id: int, data: ProductUpdate) -> ProductOut:
    """Change the fields present in `data`; NotFound, Conflict (name taken), Invalid (null name)."""
    product = _get(session, Product, product_id, "product")
    fields = data.model_dump(exclude_unset=True)
    _not_null(fields, "name")
    if "name" in fields and _name_taken(session, Product, fields["name"], product_id):
        raise Conflict(f"a product named {fields['name']!r} already exists")
    if "list_price" in fields:
        fields["list_price"] = _money(fields["list_price"])
    for k, v in fields.items():
        setattr(product, k, v)
    _flush(session)
    session.refresh(product)
    return ProductOut.model_validate(product)


# --- sales reps -----------------------------------------------------------------------------


def list_reps(
    session: Session,
    *,
    manager: str | None = None,
    office: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page[SalesRepOut]:
    """Sales reps ordered by name; `manager` and `office` (regional office) case-insensitive exact."""
    _check_page(limit, offset)
    stmt = select(SalesRep)
    if manager:
        stmt = stmt.where(func.lower(SalesRep.manager) == manager.strip().lower())
    if office:
        stmt = stmt.where(func.lower(SalesRep.regional_office) == office.strip().lower())
    total = _count(session, stmt)
    rows = session.scalars(
        stmt.order_by(func.lower(SalesRep.name), SalesRep.id).limit(limit).offset(offset)
    ).all()
    return Page(items=[SalesRepOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


def get_rep(session: Session, rep_id: int) -> SalesRepOut:
    """One sales rep; NotFound("sales rep", id)."""
    return SalesRepOut.model_validate(_get(session, SalesRep, rep_id, "sales rep"))


def create_rep(session: Session, data: SalesRepCreate) -> SalesRepOut:
    """A new sales rep; Conflict if the name is taken (case-insensitive)."""
    if _name_taken(session, SalesRep, data.name):
        raise Conflict(f"a sales rep named {data.name!r} already exists")
    rep = SalesRep(**data.model_dump())
    session.add(rep)
    _flush(session)
    session.refresh(rep)
    return SalesRepOut.model_validate(rep)


def update_rep(session: Session, rep_id: int, data: SalesRepUpdate) -> SalesRepOut:
    """Change the fields present in `data`; NotFound, Conflict (name taken), Invalid (null name)."""
    rep = _get(session, SalesRep, rep_id, "sales rep")
    fields = data.model_dump(exclude_unset=True)
    _not_null(fields, "name")
    if "name" in fields and _name_taken(session, SalesRep, fields["name"], rep_id):
        raise Conflict(f"a sales rep named {fields['name']!r} already exists")
    for k, v in fields.items():
        setattr(rep, k, v)
    _flush(session)
    session.refresh(rep)
    return SalesRepOut.model_validate(rep)


# --- deals ----------------------------------------------------------------------------------


def deal_status(stage: str) -> DealStatus:
    """open / won / lost of a stage key, per `config/pipeline.yaml`."""
    p = load_pipeline()
    if stage == p.won_key:
        return "won"
    if stage in p.lost_keys:
        return "lost"
    return "open"


def _deal_out(
    deal: Deal, account_name: str | None, product_name: str | None, rep_name: str | None
) -> DealOut:
    stage = load_pipeline().get(deal.stage)
    return DealOut(
        id=deal.id,
        external_id=deal.external_id,
        account_id=deal.account_id,
        account_name=account_name,
        product_id=deal.product_id,
        product_name=product_name,
        rep_id=deal.rep_id,
        rep_name=rep_name,
        stage=deal.stage,
        stage_name=stage.name if stage else deal.stage,
        status=deal_status(deal.stage),
        engage_date=deal.engage_date,
        close_date=deal.close_date,
        value=_f(deal.value),
        created_at=deal.created_at,
        updated_at=deal.updated_at,
    )


def _deals_select() -> Select[Any]:
    return deal_select(Deal, Account.name, Product.name, SalesRep.name)


def deal_outs(
    session: Session, conds: list[ColumnElement[bool]], order: list[Any], *, limit: int | None = None
) -> list[DealOut]:
    """Deals matching `conds` (over `deal_select`'s joins) in `order`, as DealOut; the first
    `limit` only (None: all)."""
    stmt = _deals_select().where(*conds).order_by(*order)
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = session.execute(stmt).all()
    return [_deal_out(*row) for row in rows]


def list_deals(
    session: Session,
    filter: DealFilter | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
    sort: str = "id",
) -> Page[DealOut]:
    """Deals matching `filter` (see `DealFilter`), with account/product/rep/stage names.

    `sort`: one of DEAL_SORTS, prefixed with "-" for descending; missing dates/values sort last;
    ties broken by id. Invalid("sort") for another key; Invalid(field) from the filter.
    """
    _check_page(limit, offset)
    desc = sort.startswith("-")
    key = sort.removeprefix("-")
    if key not in DEAL_SORTS:
        raise Invalid("sort", f"must be one of {', '.join(DEAL_SORTS)} (prefix - for descending)")
    col = getattr(Deal, key)
    order = [col.desc().nulls_last() if desc else col.asc().nulls_last()]
    if key != "id":
        order.append(Deal.id.desc() if desc else Deal.id)
    stmt = _deals_select().where(*deal_conditions(session, filter or DealFilter()))
    total = _count(session, stmt)
    rows = session.execute(stmt.order_by(*order).limit(limit).offset(offset)).all()
    return Page(items=[_deal_out(*row) for row in rows], total=total, limit=limit, offset=offset)


def get_deal(session: Session, deal_id: int) -> DealOut:
    """One deal with its account/product/rep/stage names; NotFound("deal", id)."""
    row = session.execute(_deals_select().where(Deal.id == _stored_id(deal_id, "deal"))).first()
    if row is None:
        raise NotFound("deal", deal_id)
    return _deal_out(*row)


def _check_order(engage: dt.date | None, close: dt.date | None) -> None:
    """Invalid("close_date") when a request gives both dates and the deal would close before it
    was engaged (a rule of the request alone, unlike the checks against stored dates)."""
    if engage is not None and close is not None and close < engage:
        raise Invalid("close_date", f"{close} is before engage_date {engage}")


def _stage(text: str) -> StageDef:
    stage = load_pipeline().resolve(text)
    if stage is None:
        known = ", ".join(s.key for s in load_pipeline().stages)
        raise Inconsistent("stage", f"unknown stage {text!r} (known: {known})")
    return stage


_REQUIRE_ATTR = {
    "account": "account_id",
    "product": "product_id",
    "engage_date": "engage_date",
    "close_date": "close_date",
    "value": "value",
}


def _enter(state: dict[str, Any], target: StageDef, today: dt.date, what: str) -> dict[str, Any]:
    """Apply the entry rules of `target` to a deal's field values (`state`, by attribute name).

    Fills what the move itself implies: engage_date = today when entering an open stage that
    requires it (the rep is engaging now), close_date = today when entering a closed stage, and
    value = 0 when entering a lost stage (the close value of a lost deal, as in the export).
    Then every field in `target.requires` must be set: Inconsistent (a Conflict) naming the missing
    ones, its `field` the first (a won deal needs an explicit close value: we never guess it from
    the list price). Returns the fills.
    """
    filled: dict[str, Any] = {}
    if not target.closed and "engage_date" in target.requires and state["engage_date"] is None:
        filled["engage_date"] = today
    if target.closed and state["close_date"] is None:
        filled["close_date"] = today
    if target.closed and not target.won and state["value"] != 0:
        filled["value"] = Decimal("0.00")
    state.update(filled)
    missing = [f for f in target.requires if state[_REQUIRE_ATTR[f]] is None]
    if missing:
        # Inconsistent, not a bare Conflict: the 409 names the rule (`field`) a client can point at
        reason = f"cannot {what} {target.name}: it requires {', '.join(missing)}, not set"
        raise Inconsistent(missing[0], reason)
    engage, close = state["engage_date"], state["close_date"]
    if engage is not None and close is not None and close < engage:
        raise Inconsistent("close_date", f"{close} is before engage_date {engage}")
    return filled


def create_deal(session: Session, data: DealCreate, *, today: dt.date | None = None) -> DealOut:
    """A new deal entering `data.stage` under that stage's entry rules (see `_enter`); writes the
    first stage-history row (from None) and an event "deal.created".

    Raises Invalid (close_date before engage_date, both given), Inconsistent (unknown stage or
    referenced id, a close date for an open stage, close before an engage date filled in),
    Conflict (external_id taken, entry rule not met). `today` defaults to the server's date.
    """
    today = today or dt.date.today()
    _check_order(data.engage_date, data.close_date)
    target = _stage(data.stage)
    _check_refs(session, data.model_dump(include={"account_id", "product_id", "rep_id"}))
    external_id = data.external_id or f"FS-{uuid.uuid4().hex[:10].upper()}"
    if session.scalar(select(Deal.id).where(Deal.external_id == external_id)) is not None:
        raise Conflict(f"a deal with external_id {external_id!r} already exists")
    state: dict[str, Any] = {
        "account_id": data.account_id,
        "product_id": data.product_id,
        "rep_id": data.rep_id,
        "engage_date": data.engage_date,
        "close_date": data.close_date,
        "value": _money(data.value),
    }
    if not target.closed and state["close_date"] is not None:
        raise Inconsistent("close_date", f"an open deal ({target.name}) has no close date")
    _enter(state, target, today, "create a deal in")
    deal = Deal(external_id=external_id, stage=target.key, **state)
    session.add(deal)
    _flush(session)
    session.add(
        DealStageHistory(deal_id=deal.id, from_stage=None, to_stage=target.key, changed_by=data.created_by)
    )
    _event(
        session,
        "deal.created",
        actor=data.created_by,
        account_id=deal.account_id,
        deal_id=deal.id,
        payload={"stage": target.key, "external_id": external_id},
    )
    _flush(session)
    session.refresh(deal)
    return get_deal(session, deal.id)


def update_deal(session: Session, deal_id: int, data: DealUpdate) -> DealOut:
    """Change the fields present in `data` (not the stage: see `move_deal_stage`); writes an event
    "deal.updated" with {"changes": {field: [old, new]}}.

    Raises NotFound, Invalid (close_date before engage_date, both given), Inconsistent (unknown
    referenced id; close before the stored engage date or the other way round; clearing a field
    the current stage requires; a close date on an open deal).
    """
    deal = _get(session, Deal, deal_id, "deal")
    fields = data.model_dump(exclude_unset=True)
    _check_order(fields.get("engage_date"), fields.get("close_date"))
    _check_refs(session, fields)
    if "value" in fields:
        fields["value"] = _money(fields["value"])
    stage = load_pipeline().get(deal.stage)
    assert stage is not None  # deals.stage is a foreign key to the synced stages
    for need in stage.requires:
        attr = _REQUIRE_ATTR[need]
        if attr in fields and fields[attr] is None:
            raise Inconsistent(attr, f"required while the deal is in stage {stage.name}")
    if not stage.closed and fields.get("close_date") is not None:
        raise Inconsistent(
            "close_date", f"an open deal ({stage.name}) has no close date; close it with a move"
        )
    engage = fields.get("engage_date", deal.engage_date)
    close = fields.get("close_date", deal.close_date)
    if engage is not None and close is not None and close < engage:
        raise Inconsistent("close_date", f"{close} is before engage_date {engage}")
    changes = {}
    for k, v in fields.items():
        old = getattr(deal, k)
        if old != v:
            changes[k] = [_jsonable(old), _jsonable(v)]
            setattr(deal, k, v)
    if changes:
        payload = {"changes": changes}
        _event(session, "deal.updated", account_id=deal.account_id, deal_id=deal.id, payload=payload)
    _flush(session)
    session.refresh(deal)
    return get_deal(session, deal_id)


def move_deal_stage(
    session: Session,
    deal_id: int,
    to_stage: str,
    changed_by: str | None = None,
    note: str | None = None,
    *,
    value: float | None = None,
    close_date: dt.date | None = None,
    reopen: bool = False,
    today: dt.date | None = None,
) -> DealOut:
    """Move a deal to `to_stage` (key or display name) and record it.

    Rules (entry rules from `config/pipeline.yaml`, see `_enter`):
    - same stage -> Conflict; unknown stage -> Inconsistent("stage"); a `close_date` with an open
      target stage, or a close date before the engage date -> Inconsistent("close_date");
    - a closed (won/lost) deal moves only with `reopen=True` (Conflict otherwise); reopening into an
      open stage clears close_date, and a lost deal's value 0 (its close value) becomes None;
    - `value` / `close_date` given here are set with the move (e.g. the close value on winning);
    - entering an open stage that requires engage_date with none sets it to `today`; entering a
      closed stage with no close_date sets it to `today`; entering a lost stage sets value 0;
    - then every `requires` field must be set, else Conflict naming them (won needs a value).
    Writes a DealStageHistory row and an Event kind "deal.stage_changed" with payload
    {"from", "to", "note", "set": {field: new value}, "previous": {field: old value}}.
    Entering the won stage also asks for the deal's onboarding workflow (`crm.workflow_runs`).
    `today` defaults to the server's date. Returns the deal as it is after the move.
    """
    today = today or dt.date.today()
    deal = _get(session, Deal, deal_id, "deal")
    target = _stage(to_stage)
    pipeline = load_pipeline()
    current = pipeline.get(deal.stage)
    assert current is not None
    if target.key == deal.stage:
        raise Conflict(f"deal {deal_id} is already in stage {target.name}")
    if current.closed and not reopen:
        raise Conflict(
            f"deal {deal_id} is closed ({current.name}); moving it to {target.name} reopens it: "
            "pass reopen=true to do so"
        )
    before: dict[str, Any] = {attr: getattr(deal, attr) for attr in _REQUIRE_ATTR.values()}
    state = dict(before)
    if current.closed and not target.closed:
        state["close_date"] = None
        if not current.won and state["value"] == 0:
            state["value"] = None
    if value is not None:
        state["value"] = _money(value)
    if close_date is not None:
        if not target.closed:
            raise Inconsistent("close_date", f"an open deal ({target.name}) has no close date")
        state["close_date"] = close_date
    _enter(state, target, today, f"move deal {deal_id} to")
    changed = {k: v for k, v in state.items() if v != before[k]}
    for k, v in changed.items():
        setattr(deal, k, v)
    from_stage = deal.stage
    deal.stage = target.key
    session.add(
        DealStageHistory(
            deal_id=deal.id, from_stage=from_stage, to_stage=target.key, changed_by=changed_by, note=note
        )
    )
    _event(
        session,
        "deal.stage_changed",
        actor=changed_by,
        account_id=deal.account_id,
        deal_id=deal.id,
        payload={
            "from": from_stage,
            "to": target.key,
            "note": note,
            "set": {k: _jsonable(v) for k, v in changed.items()},
            "previous": {k: _jsonable(before[k]) for k in changed},
        },
    )
    if target.won:  # a win starts the deal's onboarding (delivery plan, tasks, status report)
        workflow_runs.request(session, "onboarding", deal.id, deal_id=deal.id)
    _flush(session)
    session.refresh(deal)
    return get_deal(session, deal_id)


def deal_history(session: Session, deal_id: int) -> list[StageChangeOut]:
    """Stage changes of a deal, oldest first; NotFound("deal", id)."""
    _get(session, Deal, deal_id, "deal")
    rows = session.scalars(
        select(DealStageHistory)
        .where(DealStageHistory.deal_id == deal_id)
        .order_by(DealStageHistory.changed_at, DealStageHistory.id)
    ).all()
    return [StageChangeOut.model_validate(r) for r in rows]


# --- reminders ------------------------------------------------------------------------------


def list_reminders(
    session: Session,
    *,
    rep_id: int | None = None,
    account_id: int | None = None,
    deal_id: int | None = None,
    status: str | None = None,
    due_before: dt.datetime | None = None,
    limit: int = 50,
    offset: int = 0,
    scope: ColumnElement[bool] | None = None,
) -> Page[ReminderOut]:
    """Reminders ordered by due time (earliest first), then id; each argument narrows the list
    (`scope`: the caller's, `crm.access.owned_condition`)."""
    _check_page(limit, offset)
    stmt = select(Reminder)
    if scope is not None:
        stmt = stmt.where(scope)
    for col, val in (
        (Reminder.rep_id, rep_id),
        (Reminder.account_id, account_id),
        (Reminder.deal_id, deal_id),
        (Reminder.status, status),
    ):
        if val is not None:
            stmt = stmt.where(col == val)
    if due_before is not None:
        stmt = stmt.where(Reminder.due_at < due_before)
    total = _count(session, stmt)
    rows = session.scalars(stmt.order_by(Reminder.due_at, Reminder.id).limit(limit).offset(offset)).all()
    return Page(items=[ReminderOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


def get_reminder(session: Session, reminder_id: int) -> ReminderOut:
    """One reminder; NotFound("reminder", id)."""
    return ReminderOut.model_validate(_get(session, Reminder, reminder_id, "reminder"))


def create_reminder(session: Session, data: ReminderCreate) -> ReminderOut:
    """A pending reminder, and the request for its workflow (`crm.workflow_runs`); Invalid(field)
    for an unknown rep/account/deal id. When `deal_id` is given, the deal's account and owner fill
    in what is left out."""
    fields = data.model_dump()
    _check_refs(session, fields)
    if fields["deal_id"] is not None and (fields["account_id"] is None or fields["rep_id"] is None):
        deal = session.get(Deal, fields["deal_id"])
        if deal is not None:
            fields["account_id"] = fields["account_id"] or deal.account_id
            fields["rep_id"] = fields["rep_id"] or deal.rep_id
    reminder = Reminder(**fields)
    session.add(reminder)
    _flush(session)
    session.refresh(reminder)
    # its workflow (fire at the due time, escalate) is asked for in the same transaction
    workflow_runs.request(
        session,
        "reminder",
        reminder.id,
        deal_id=reminder.deal_id,
        reminder_id=reminder.id,
    )
    return ReminderOut.model_validate(reminder)


def update_reminder(session: Session, reminder_id: int, data: ReminderUpdate) -> ReminderOut:
    """Change due time, message, status or escalation level; a status change writes an event
    "reminder.status_changed" {"from", "to"}. NotFound; Invalid for a null where not allowed."""
    reminder = _get(session, Reminder, reminder_id, "reminder")
    fields = data.model_dump(exclude_unset=True)
    _not_null(fields, "due_at", "message", "status", "escalation_level")
    if "status" in fields and fields["status"] != reminder.status:
        _event(
            session,
            "reminder.status_changed",
            account_id=reminder.account_id,
            deal_id=reminder.deal_id,
            payload={"reminder_id": reminder.id, "from": reminder.status, "to": fields["status"]},
        )
    for k, v in fields.items():
        setattr(reminder, k, v)
    _flush(session)
    session.refresh(reminder)
    return ReminderOut.model_validate(reminder)


# --- recommendations ------------------------------------------------------------------------


def list_recommendations(
    session: Session,
    *,
    rep_id: int | None = None,
    account_id: int | None = None,
    deal_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    scope: ColumnElement[bool] | None = None,
) -> Page[RecommendationOut]:
    """Recommendations, highest priority first, then newest first (id descending); `scope`: the
    caller's (`crm.access.owned_condition`)."""
    _check_page(limit, offset)
    stmt = select(Recommendation)
    if scope is not None:
        stmt = stmt.where(scope)
    for col, val in (
        (Recommendation.rep_id, rep_id),
        (Recommendation.account_id, account_id),
        (Recommendation.deal_id, deal_id),
        (Recommendation.status, status),
    ):
        if val is not None:
            stmt = stmt.where(col == val)
    total = _count(session, stmt)
    order = (Recommendation.priority.desc(), Recommendation.id.desc())
    rows = session.scalars(stmt.order_by(*order).limit(limit).offset(offset)).all()
    items = [RecommendationOut.model_validate(r) for r in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


def get_recommendation(session: Session, recommendation_id: int) -> RecommendationOut:
    """One recommendation; NotFound("recommendation", id)."""
    rec = _get(session, Recommendation, recommendation_id, "recommendation")
    return RecommendationOut.model_validate(rec)


def create_recommendation(session: Session, data: RecommendationCreate) -> RecommendationOut:
    """An open recommendation; Invalid(field) for an unknown rep/account/deal id. When only
    `deal_id` is given, the deal's account is filled in."""
    fields = data.model_dump()
    _check_refs(session, fields)
    if fields["deal_id"] is not None and fields["account_id"] is None:
        fields["account_id"] = session.scalar(select(Deal.account_id).where(Deal.id == fields["deal_id"]))
    rec = Recommendation(**fields)
    session.add(rec)
    _flush(session)
    session.refresh(rec)
    return RecommendationOut.model_validate(rec)


def update_recommendation(
    session: Session, recommendation_id: int, data: RecommendationUpdate, *, actor: str | None = None
) -> RecommendationOut:
    """Change status/priority/text; a status change (the rep accepting or dismissing advice) writes
    an event "recommendation.status_changed" {"recommendation_id", "from", "to"}."""
    rec = _get(session, Recommendation, recommendation_id, "recommendation")
    fields = data.model_dump(exclude_unset=True)
    _not_null(fields, "status", "priority", "action", "reason")
    if "status" in fields and fields["status"] != rec.status:
        _event(
            session,
            "recommendation.status_changed",
            actor=actor,
            account_id=rec.account_id,
            deal_id=rec.deal_id,
            payload={"recommendation_id": rec.id, "from": rec.status, "to": fields["status"]},
        )
    for k, v in fields.items():
        setattr(rec, k, v)
    _flush(session)
    session.refresh(rec)
    return RecommendationOut.model_validate(rec)


# --- events ---------------------------------------------------------------------------------


def list_events(
    session: Session,
    *,
    kind: str | None = None,
    account_id: int | None = None,
    deal_id: int | None = None,
    thread_id: str | None = None,
    actor: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 50,
    offset: int = 0,
    scope: ColumnElement[bool] | None = None,
) -> Page[EventOut]:
    """Events, newest first (occurred_at, then id, descending). `kind` is exact, or a prefix when it
    ends with "*" ("deal.*" = every deal event); `since` is inclusive; `scope`: the caller's
    (`crm.access.events_condition`)."""
    _check_page(limit, offset)
    stmt = select(Event)
    if scope is not None:
        stmt = stmt.where(scope)
    if kind:
        if kind.endswith("*"):
            stmt = stmt.where(Event.kind.startswith(kind[:-1], autoescape=True))
        else:
            stmt = stmt.where(Event.kind == kind)
    for col, val in (
        (Event.account_id, account_id),
        (Event.deal_id, deal_id),
        (Event.thread_id, thread_id),
        (Event.actor, actor),
    ):
        if val is not None:
            stmt = stmt.where(col == val)
    if since is not None:
        stmt = stmt.where(Event.occurred_at >= since)
    total = _count(session, stmt)
    rows = session.scalars(
        stmt.order_by(Event.occurred_at.desc(), Event.id.desc()).limit(limit).offset(offset)
    ).all()
    return Page(items=[EventOut.model_validate(e) for e in rows], total=total, limit=limit, offset=offset)


def append_event(session: Session, data: EventCreate) -> EventOut:
    """Append an event to the log; Invalid(field) for an unknown account/deal id."""
    fields = data.model_dump()
    _check_refs(session, fields)
    ev = Event(**fields)
    session.add(ev)
    _flush(session)
    session.refresh(ev)
    return EventOut.model_validate(ev)
