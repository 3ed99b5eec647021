"""What the guards read from the CRM for one response (`tools.guard_facts.gather`), on the small
CRM of tests/tools/conftest.py: the personal data of the records the turn is about, the list
price of its one product, and the turn's deals read once for both."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from contracts import CrewRequest, CrewResponse, Entities, Source
from tests.tools.conftest import CRM
from tools.guard_facts import GuardFacts, gather
from tools.names import name_index


def _deal(crm: CRM, external_id: str) -> Source:
    return Source(kind="deal", id=external_id, label=external_id, data={"deal_id": crm.deal[external_id]})


def _gather(engine: Engine, request: CrewRequest, response: CrewResponse) -> tuple[GuardFacts, list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with Session(engine) as session:
        name_index(session)  # built once per database and cached: not what is counted here
        event.listen(engine, "before_cursor_execute", record)
        try:
            return gather(session, request, response), statements
        finally:
            event.remove(engine, "before_cursor_execute", record)


def test_deals_give_their_accounts_contacts_and_their_one_product_s_price_in_one_read(
    clean_db: Engine, crm_data: CRM
) -> None:
    request = CrewRequest(message="discount for Acme?", intent="closing", entities=Entities())
    # D0000001 (Acme) and D0000004 (Betaco) are both GTX Pro deals, list price 4,821
    response = CrewResponse(reply="...", sources=[_deal(crm_data, "D0000001"), _deal(crm_data, "D0000004")])
    facts, statements = _gather(clean_db, request, response)
    assert facts.list_price == 4821.0
    assert "dana.diaz@acme.example" in facts.allowed_pii  # Acme's contact, through its deal
    deal_reads = [s for s in statements if "FROM deals" in s]
    assert len(deal_reads) == 1, deal_reads


def test_deals_of_several_products_give_no_price_and_the_turn_s_product_wins(
    clean_db: Engine, crm_data: CRM
) -> None:
    request = CrewRequest(message="discount?", intent="closing", entities=Entities())
    mixed = CrewResponse(reply="...", sources=[_deal(crm_data, "D0000001"), _deal(crm_data, "D0000002")])
    assert _gather(clean_db, request, mixed)[0].list_price is None  # GTX Pro and GTX Basic
    named = request.model_copy(update={"entities": crm_data.entities(("product", "MG Advanced"))})
    facts, statements = _gather(clean_db, named, mixed)
    assert facts.list_price == 3393.0  # the turn's own product, not its deals'
    assert "dana.diaz@acme.example" in facts.allowed_pii
    assert len([s for s in statements if "FROM deals" in s]) == 1


def test_a_response_without_records_reads_no_deals_and_allows_no_personal_data(
    clean_db: Engine, crm_data: CRM
) -> None:
    request = CrewRequest(message="hello", intent="general", entities=Entities())
    facts, statements = _gather(clean_db, request, CrewResponse(reply="Hi."))
    assert facts.allowed_pii == ()
    assert facts.list_price is None
    assert not [s for s in statements if "FROM deals" in s or "FROM contacts" in s]
