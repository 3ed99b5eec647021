"""What the guards need to know from the CRM to check one crew response (the chat's guard step), in
one short transaction, without an LLM:

- the CRM's name index (`crm.names.NameIndex`, from `tools.names.name_index`: cached per
  database, rebuilt when the CRM's names change, so an import by any process is seen on the next
  turn): accounts, contacts, reps, managers, products, deal ids, stage, sector, office and
  country names;
- the personal data the reply may show (`allowed_pii`): emails and phone numbers of the contacts
  of the accounts and contacts the turn is about (its entities and the response's sources), and
  the email of the reps it names;
- the deal's product list price, so "$X off" reads as a percentage.

    facts = gather(session, request, response)      # GuardFacts
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from contracts import CrewRequest, CrewResponse
from crm.models import Contact, Deal, Product, SalesRep
from crm.names import NameIndex
from tools.names import name_index

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# --------------------------------------------------------------------------------------------
# what the validators need for one response
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardFacts:
    """The CRM-side inputs of `guards.GuardContext` for one response: the name index, the
    personal data the reply may show (emails and phone numbers) and the list price (USD) of the
    turn's one product, or None."""

    index: NameIndex
    allowed_pii: tuple[str, ...]
    list_price: float | None


def _int_id(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def record_ids(request: CrewRequest, response: CrewResponse) -> dict[str, set[int]]:
    """Row ids of the accounts, contacts, reps, deals and products the turn is about (the
    request's entities and the response's sources), by kind."""
    ids: dict[str, set[int]] = {k: set() for k in ("account", "contact", "rep", "deal", "product")}
    for ref in request.entities.items:
        if ref.kind in ids and ref.id is not None:
            ids[ref.kind].add(ref.id)
    for source in response.sources:
        if source.kind in ("account", "contact", "rep", "product"):
            row = _int_id(source.id)
            if row is not None:
                ids[source.kind].add(row)
        elif source.kind == "deal":
            row = _int_id(source.data.get("deal_id"))
            if row is not None:
                ids["deal"].add(row)
    return ids


#: (account id, product id) of each of a turn's deals (`deal_refs`).
DealRefs = list[tuple[int | None, int | None]]


def deal_refs(session: Session, deal_ids: set[int]) -> DealRefs:
    """(account id, product id) of each deal of `deal_ids` that exists; one query, none for no
    ids."""
    if not deal_ids:
        return []
    rows = session.execute(select(Deal.account_id, Deal.product_id).where(Deal.id.in_(deal_ids)))
    return [(account_id, product_id) for account_id, product_id in rows]


def allowed_pii(session: Session, ids: dict[str, set[int]], deals: DealRefs) -> tuple[str, ...]:
    """Emails and phone numbers of the contacts of the accounts in `ids` and of the `deals`'
    accounts (`deal_refs`), and of the contacts in `ids`, and the emails of its reps; sorted,
    without duplicates."""
    accounts = set(ids["account"]) | {account for account, _ in deals if account}
    found: list[str] = []
    if accounts or ids["contact"]:
        rows = session.execute(
            select(Contact.email, Contact.phone).where(
                Contact.account_id.in_(accounts) | Contact.id.in_(ids["contact"])
            )
        )
        for email, phone in rows:
            found += [v for v in (email, phone) if v]
    if ids["rep"]:
        found += [e for e in session.scalars(select(SalesRep.email).where(SalesRep.id.in_(ids["rep"]))) if e]
    return tuple(sorted(set(found)))


def list_price(
    session: Session, response: CrewResponse, ids: dict[str, set[int]], deals: DealRefs
) -> float | None:
    """The list price (USD) the response's "$X off" refers to: the one in its data (`price`),
    else that of the one product of the turn's products or, without those, of its `deals`
    (`deal_refs`); None when there are none or several."""
    price = response.data.get("price") if isinstance(response.data, dict) else None
    if isinstance(price, dict) and isinstance(price.get("list_price"), (int, float)):
        return float(price["list_price"])
    product_ids = set(ids["product"]) or {product for _, product in deals if product}
    if len(product_ids) != 1:  # none, or several: "$X off" cannot be read as one percentage
        return None
    value = session.scalar(select(Product.list_price).where(Product.id.in_(product_ids)))
    return None if value is None else float(value)


def gather(session: Session, request: CrewRequest, response: CrewResponse) -> GuardFacts:
    """Name index, allowed personal data and list price for checking `response`, read in
    `session` (blocking: run it in a worker thread); the deals' accounts and products are read
    once for both."""
    ids = record_ids(request, response)
    deals = deal_refs(session, ids["deal"])
    return GuardFacts(
        index=name_index(session),
        allowed_pii=allowed_pii(session, ids, deals),
        list_price=list_price(session, response, ids, deals),
    )
