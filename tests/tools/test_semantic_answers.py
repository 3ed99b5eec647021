"""The planner's choice completed with the resolved entities, run, and worded, on the small CRM
of `tests/tools/conftest.py` (figures by hand in its docstring)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from contracts import Entities
from crm.db import session_scope
from tests.tools.conftest import CRM
from tests.tools.conftest import crm_data as crm_data
from tools.answers import Answer
from tools.semantic_answers import semantic_answer
from tools.semantic_plan import SemanticChoice, complete_query


def _answer(engine: Engine, ents: Entities, rep_ids: frozenset[int] | None = None, **choice: Any) -> Answer:
    with session_scope(engine) as s:
        return semantic_answer(s, SemanticChoice.model_validate(choice), ents, rep_ids=rep_ids)


def test_named_records_become_conditions(crm_data: CRM) -> None:
    ents = crm_data.entities(("account", "Acme"), ("account", "Gammaco"), ("manager", "Mia Manager"))
    q = complete_query(SemanticChoice(subject="deal", measure="metric", metric="won_value"), ents)
    where = {(c.field, c.op, str(c.value)) for c in q.where}
    assert ("account.name", "in", "['Acme', 'Gammaco']") in where
    assert ("rep.manager", "eq", "Mia Manager") in where
    period = crm_data.entities(period=("2017-04-01", "2017-07-01", "Q2 2017"))
    q = complete_query(SemanticChoice(subject="deal", measure="count", date_field="engage"), period)
    assert [(c.field, c.op, c.value) for c in q.where] == [
        ("deal.engage_date", "gte", "2017-04-01"),
        ("deal.engage_date", "lt", "2017-07-01"),
    ]


def test_figures_lists_and_rankings_are_worded_from_the_result(crm_data: CRM, clean_db: Engine) -> None:
    none = Entities()
    retail = crm_data.entities(("sector", "retail"))
    a = _answer(clean_db, retail, subject="deal", measure="metric", metric="won_value")
    assert "$9,300" in a.draft and "retail" in a.draft
    a = _answer(
        clean_db,
        retail,
        subject="account",
        measure="list",
        conditions=[{"field": "account.employees", "op": "gt", "value": 1000}],
    )
    assert "Gammaco" in a.draft and "Betaco" not in a.draft and "1,000" in a.draft
    a = _answer(clean_db, none, subject="rep", measure="metric", metric="won_value", rank="highest")
    assert a.draft.startswith("Ann Alpha has the highest") and "$5,600" in a.draft
    a = _answer(
        clean_db, none, subject="product", measure="list", field="product.list_price", rank="lowest", top_n=2
    )
    assert "GTX Basic ($550)" in a.draft and "MG Advanced ($3,393)" in a.draft and "GTX Pro" not in a.draft
    a = _answer(clean_db, none, subject="deal", measure="metric", metric="win_rate", group_by="rep.office")
    assert a.draft == "The win rate of deals by office: East (100.0%), West (75.0%)."
    a = _answer(
        clean_db, none, subject="account", measure="count", having=[{"metric": "won", "op": "eq", "value": 0}]
    )
    assert a.draft == "There is 1 account with no won deal."
    founded = _answer(
        clean_db,
        crm_data.entities(("account", "Acme")),
        subject="account",
        measure="list",
        field="account.year_established",
    )
    assert founded.draft == "Acme: founding year 1996."


def test_scope_and_refusals(crm_data: CRM, clean_db: Engine) -> None:
    ann = frozenset({crm_data.rep["Ann Alpha"]})
    a = _answer(clean_db, Entities(), ann, subject="deal", measure="metric", metric="won_value")
    assert "$5,600" in a.draft
    with pytest.raises(ValidationError):
        _answer(clean_db, Entities(), subject="account", measure="avg", field="account.sector")
