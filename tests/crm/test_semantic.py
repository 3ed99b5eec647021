"""The semantic layer's queries on the small CRM of `tests/tools/conftest.py` (figures by hand,
see its docstring), on the real database: each query shape a question may take, and its answer.

Deals: Acme (Ann): D1 won 5000 GTX Pro, D2 won 600 GTX Basic, D3 lost MG Advanced; Betaco (Bob):
D4 won 4500 GTX Pro, D5 engaging GTX Basic; Gammaco (Cy): D6 engaging MG Advanced, D8 won 4800
GTX Pro; no account: D7 prospecting GTX Basic (Cy). Accounts: Acme technology 2,822 employees,
founded 1996, parent of Betaco (retail, 500); Gammaco retail 1,500; Deltaco software 100, no
deal."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from crm.db import session_scope
from crm.semantic import Condition, SemanticQuery, SemanticResult, run_query, snap_values
from tests.tools.conftest import CRM
from tests.tools.conftest import crm_data as crm_data


def _run(engine: Engine, rep_ids: frozenset[int] | None = None, **query: Any) -> SemanticResult:
    with session_scope(engine) as s:
        return run_query(s, SemanticQuery.model_validate(query), rep_ids=rep_ids)


def _labels(result: SemanticResult) -> list[str | None]:
    return [r.label for r in result.rows]


def test_account_attributes_filter_and_list(crm_data: CRM, clean_db: Engine) -> None:
    big_retail = _run(
        clean_db,
        subject="account",
        where=[
            {"field": "account.sector", "value": "Retail"},
            {"field": "account.employees", "op": "gt", "value": 1000},
        ],
    )
    assert _labels(big_retail) == ["Gammaco"]
    founded = _run(
        clean_db,
        subject="account",
        where=[{"field": "account.name", "value": "acme"}],
        field="account.year_established",
    )
    assert [(r.label, r.value) for r in founded.rows] == [("Acme", 1996)]
    subs = _run(clean_db, subject="account", where=[{"field": "account.parent", "value": "Acme"}])
    assert _labels(subs) == ["Betaco"]


def test_counts_and_aggregates_of_records(crm_data: CRM, clean_db: Engine) -> None:
    n = _run(
        clean_db, subject="account", measure="count", where=[{"field": "account.sector", "value": "retail"}]
    )
    assert n.rows[0].value == 2
    avg = _run(clean_db, subject="account", measure="avg", field="account.employees")
    assert avg.rows[0].value == pytest.approx((2822 + 500 + 1500 + 100) / 4)
    price = _run(clean_db, subject="product", measure="max", field="product.list_price")
    assert price.rows[0].value == 4821
    per_sector = _run(
        clean_db,
        subject="account",
        measure="count",
        group_by="account.sector",
        order_by={"by": "value"},
        limit=1,
    )
    assert [(r.label, r.value) for r in per_sector.rows] == [("retail", 2)] and per_sector.total == 3
    managers = _run(clean_db, subject="rep", measure="count_distinct", field="rep.manager")
    assert managers.rows[0].value == 2
    team = _run(clean_db, subject="rep", where=[{"field": "rep.manager", "value": "Mia Manager"}])
    assert _labels(team) == ["Ann Alpha", "Bob Beta"]


def test_records_with_or_without_matching_deals(crm_data: CRM, clean_db: Engine) -> None:
    # accounts with no won deal: Deltaco (no deal at all); Acme, Betaco, Gammaco all won one
    no_win = _run(clean_db, subject="account", having=[{"metric": "won", "op": "eq", "value": 0}])
    assert _labels(no_win) == ["Deltaco"]
    # "retail accounts with an open deal"
    open_retail = _run(
        clean_db,
        subject="account",
        where=[{"field": "account.sector", "value": "retail"}],
        having=[{"metric": "open", "op": "gt", "value": 0}],
    )
    assert _labels(open_retail) == ["Betaco", "Gammaco"]
    # accounts that bought GTX Basic (a condition on the deals: at least one such deal)
    bought = _run(clean_db, subject="account", where=[{"field": "product.name", "value": "GTX Basic"}])
    assert _labels(bought) == ["Acme", "Betaco"]
    won_basic = _run(
        clean_db,
        subject="account",
        where=[{"field": "product.name", "value": "GTX Basic"}],
        having=[{"metric": "won", "op": "gte", "value": 1}],
    )
    assert _labels(won_basic) == ["Acme"]


def test_deal_metrics_filtered_grouped_and_ranked(crm_data: CRM, clean_db: Engine) -> None:
    retail_revenue = _run(
        clean_db,
        subject="deal",
        measure="metric",
        metric="won_value",
        where=[{"field": "account.sector", "value": "retail"}],
    )
    assert retail_revenue.rows[0].value == 4500 + 4800
    west = _run(
        clean_db,
        subject="deal",
        measure="metric",
        metric="win_rate",
        group_by="rep.office",
        order_by={"by": "value"},
    )
    assert [(r.label, r.value) for r in west.rows] == [("East", 100.0), ("West", 75.0)]
    by_quarter = _run(clean_db, subject="deal", measure="metric", metric="won", group_by="deal.close_quarter")
    assert [(r.label, r.value) for r in by_quarter.rows if r.label] == [("2017-Q1", 2), ("2017-Q2", 2)]
    q2 = _run(
        clean_db,
        subject="deal",
        measure="count",
        where=[
            {"field": "deal.close_date", "op": "gte", "value": "2017-04-01"},
            {"field": "deal.close_date", "op": "lt", "value": "2017-07-01"},
        ],
    )
    assert q2.rows[0].value == 2
    biggest = _run(
        clean_db,
        subject="deal",
        where=[{"field": "deal.status", "value": "won"}],
        order_by={"by": "deal.value"},
        limit=2,
    )
    assert _labels(biggest) == ["D0000001", "D0000008"] and biggest.total == 4


def test_rankings_of_records_and_figures_over_them(crm_data: CRM, clean_db: Engine) -> None:
    top_rep = _run(
        clean_db, subject="rep", measure="metric", metric="won_value", order_by={"by": "value"}, limit=1
    )
    assert [(r.label, r.value) for r in top_rep.rows] == [("Ann Alpha", 5600.0)]
    lowest = _run(
        clean_db,
        subject="product",
        measure="list",
        order_by={"by": "product.list_price", "direction": "asc"},
        limit=1,
    )
    assert _labels(lowest) == ["GTX Basic"]
    # a metric with no ranking is one figure over all the rows' deals: retail accounts' win rate
    retail = _run(
        clean_db,
        subject="account",
        measure="metric",
        metric="win_rate",
        where=[{"field": "account.sector", "value": "retail"}],
    )
    assert retail.rows == [retail.rows[0]] and retail.rows[0].value == 100.0
    # X vs Y
    versus = _run(
        clean_db,
        subject="rep",
        measure="metric",
        metric="won",
        where=[{"field": "rep.name", "op": "in", "value": ["Ann Alpha", "Cy Gamma"]}],
        order_by={"by": "value"},
    )
    assert [(r.label, r.value) for r in versus.rows] == [("Ann Alpha", 2), ("Cy Gamma", 1)]


def test_shares(crm_data: CRM, clean_db: Engine) -> None:
    # share of Ann's closed deals that were won: 2 of 3
    share = _run(
        clean_db,
        subject="deal",
        measure="share",
        where=[
            {"field": "rep.name", "value": "Ann Alpha"},
            {"field": "deal.status", "op": "in", "value": ["won", "lost"]},
        ],
        share_where=[{"field": "deal.status", "value": "won"}],
    )
    assert share.rows[0].value == pytest.approx(200 / 3)
    retail_share = _run(
        clean_db,
        subject="account",
        measure="share",
        share_where=[{"field": "account.sector", "value": "retail"}],
    )
    assert retail_share.rows[0].value == 50.0


def test_scope_narrows_deals_and_accounts(crm_data: CRM, clean_db: Engine) -> None:
    ann = frozenset({crm_data.rep["Ann Alpha"]})
    accounts = _run(clean_db, ann, subject="account")
    assert _labels(accounts) == ["Acme", "Deltaco"]  # hers, and the one nobody works
    revenue = _run(clean_db, ann, subject="deal", measure="metric", metric="won_value")
    assert revenue.rows[0].value == 5600


def test_queries_that_mean_nothing_are_refused_with_a_reason() -> None:
    with pytest.raises(ValidationError, match="needs `metric`"):
        SemanticQuery(subject="deal", measure="metric")
    with pytest.raises(ValidationError, match="numeric `field`"):
        SemanticQuery(subject="account", measure="avg", field="account.sector")
    with pytest.raises(ValidationError, match="is text"):
        SemanticQuery.model_validate(
            {"subject": "account", "where": [{"field": "account.sector", "op": "gt", "value": "a"}]}
        )
    with pytest.raises(ValidationError, match="not an attribute of account"):
        SemanticQuery(subject="account", measure="sum", field="deal.value")
    with pytest.raises(ValidationError):
        SemanticQuery.model_validate(
            {"subject": "account", "where": [{"field": "account.colour", "value": "x"}]}
        )


def test_values_are_snapped_to_the_crms_own(crm_data: CRM, clean_db: Engine) -> None:
    q = SemanticQuery.model_validate(
        {
            "subject": "product",
            "measure": "count",
            "where": [{"field": "product.series", "value": "GTX Pro"}],
        }
    )
    with session_scope(clean_db) as s:
        snapped = snap_values(s, q)
        assert snapped.where[0].value == "GTX"  # the known series inside the planner's words
        assert run_query(s, snapped).rows[0].value == 2
        tech = q.model_copy(
            update={
                "subject": "account",
                "where": [Condition(field="account.sector", op="in", value=["Tech", "nowhere"])],
            }
        )
        assert snap_values(s, tech).where[0].value == ["technology", "nowhere"]
