"""crm.analytics on a small hand-built CRM whose answers are worked out by hand below."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm.analytics import (
    DealFilter,
    account_profile,
    accounts_by_sector,
    deal_metrics,
    find_accounts,
    find_products,
    find_reps,
    list_managers,
    list_offices,
    parent_account,
    pipeline_summary,
    reference_date,
    rep_profile,
    stuck_deals,
    subsidiaries,
    team_of,
)
from crm.errors import Invalid, NotFound
from crm.models import Account, Deal, DealStageHistory, Product, SalesRep

D = dt.date

# Deals (rep, product, account, stage, engage, close, value); list prices Alpha 100, Beta 1000.
#   won:  d1 120 (10 days), d2 900 (30 days), d4 1100 (30 days)        -> revenue 2120
#   lost: d3, d8 (value 0)                                            -> win rate 3/5 = 60 %
#   open: d5 engaging, no value -> Alpha list 100 x 0.25 = 25
#         d6 prospecting, no value -> Beta list 1000 x 0.10 = 100
#         d7 engaging, value 800 x 0.25 = 200                         -> pipeline 1900, forecast 325
DEALS = [
    ("d1", "Ann", "Alpha", "Acme", "won", D(2017, 1, 1), D(2017, 1, 11), 120),
    ("d2", "Ann", "Beta", "Acme", "won", D(2017, 1, 5), D(2017, 2, 4), 900),
    ("d3", "Ann", "Alpha", "Bolt", "lost", D(2017, 2, 1), D(2017, 2, 10), 0),
    ("d4", "Bob", "Beta", "Bolt", "won", D(2017, 2, 1), D(2017, 3, 3), 1100),
    ("d5", "Bob", "Alpha", "Core", "engaging", D(2017, 3, 1), None, None),
    ("d6", "Cid", "Beta", None, "prospecting", None, None, None),
    ("d7", "Cid", "Beta", "Core", "engaging", D(2017, 3, 15), None, 800),
    ("d8", "Cid", "Alpha", "Core", "lost", D(2017, 1, 20), D(2017, 3, 20), 0),
]


@pytest.fixture
def s(clean_db: Engine) -> Iterator[Session]:
    with Session(clean_db) as session:
        reps = {
            "Ann": SalesRep(name="Ann Ames", manager="Mia Moss", regional_office="East"),
            "Bob": SalesRep(name="Bob Burr", manager="Mia Moss", regional_office="East"),
            "Cid": SalesRep(name="Cid Cole", manager="Max Mohr", regional_office="West"),
        }
        products = {
            "Alpha": Product(name="Alpha", series="A", list_price=Decimal(100)),
            "Beta": Product(name="Beta", series="B", list_price=Decimal(1000)),
        }
        acme = Account(name="Acme", sector="tech")
        accounts = {"Acme": acme, "Core": Account(name="Core", sector="tech")}
        session.add_all([*reps.values(), *products.values(), *accounts.values()])
        session.flush()
        accounts["Bolt"] = Account(name="Bolt-Works", sector="retail", parent_account_id=acme.id)
        session.add(accounts["Bolt"])
        session.flush()
        for ext, rep, prod, acc, stage, engage, close, value in DEALS:
            session.add(
                Deal(
                    external_id=ext,
                    rep_id=reps[rep].id,
                    product_id=products[prod].id,
                    account_id=accounts[acc].id if acc else None,
                    stage=stage,
                    engage_date=engage,
                    close_date=close,
                    value=None if value is None else Decimal(value),
                )
            )
        session.commit()
        yield session


def test_totals_follow_the_definitions(s: Session) -> None:
    (row,) = deal_metrics(s)
    assert row.group is None
    assert (row.deals, row.open, row.won, row.lost) == (8, 3, 3, 2)
    assert row.win_rate == pytest.approx(60.0)
    assert row.won_value == 2120
    assert row.avg_won_value == pytest.approx(2120 / 3)
    assert row.max_won_value == 1100
    assert row.avg_cycle_days == pytest.approx((10 + 30 + 30) / 3)
    assert row.open_pipeline_value == 1900  # d5 at Alpha's list price 100, d6 at Beta's 1000, d7 800
    assert row.weighted_forecast == pytest.approx(100 * 0.25 + 1000 * 0.10 + 800 * 0.25)


def test_group_by_rep_keeps_full_precision_and_sorts(s: Session) -> None:
    rows = {r.group: r for r in deal_metrics(s, group_by="rep")}
    assert list(rows) == ["Ann Ames", "Bob Burr", "Cid Cole"]
    assert rows["Ann Ames"].win_rate == pytest.approx(200 / 3)  # not rounded to 66.7
    assert rows["Bob Burr"].win_rate == 100.0
    assert rows["Cid Cole"].win_rate == 0.0
    assert rows["Cid Cole"].avg_won_value is None
    assert rows["Cid Cole"].open_pipeline_value == 1800
    ranked = deal_metrics(s, group_by="rep", order_by="won_value")
    assert [r.group for r in ranked] == ["Bob Burr", "Ann Ames", "Cid Cole"]
    top = deal_metrics(s, DealFilter(office="east"), "rep", order_by="won_value", limit=1)
    assert [r.group for r in top] == ["Bob Burr"]
    # None metrics sort last whichever the direction
    by_cycle = deal_metrics(s, group_by="rep", order_by="avg_cycle_days", descending=False)
    assert [r.group for r in by_cycle] == ["Ann Ames", "Bob Burr", "Cid Cole"]


def test_other_groupings(s: Session) -> None:
    offices = {r.group: r for r in deal_metrics(s, group_by="office")}
    assert offices["East"].win_rate == 75.0 and offices["East"].won_value == 2120
    assert offices["West"].won == 0 and offices["West"].lost == 1
    accounts = deal_metrics(s, group_by="account")
    assert [(r.group, r.won_value) for r in accounts] == [
        ("Acme", 1020),
        ("Bolt-Works", 1100),
        ("Core", 0),
        (None, 0),  # d6 has no account: its own group, last
    ]
    months = deal_metrics(s, group_by="engage_month")
    assert [(r.group, r.deals) for r in months] == [("2017-01", 3), ("2017-02", 2), ("2017-03", 2), (None, 1)]
    stages = deal_metrics(s, group_by="stage")
    assert [r.group for r in stages] == ["prospecting", "engaging", "won", "lost"]  # pipeline order
    assert {r.group: r.deals for r in deal_metrics(s, group_by="sector")} == {"retail": 2, "tech": 5, None: 1}
    assert {r.group: r.won for r in deal_metrics(s, group_by="manager")} == {"Max Mohr": 0, "Mia Moss": 3}
    assert {r.group: r.won_value for r in deal_metrics(s, group_by="series")} == {"A": 120, "B": 2000}
    assert {r.group: r.deals for r in deal_metrics(s, group_by="close_month")} == {
        "2017-01": 1,
        "2017-02": 2,
        "2017-03": 2,
        None: 3,
    }


@pytest.mark.parametrize(
    ("f", "deals"),
    [
        (DealFilter(rep="ann ames"), 3),
        (DealFilter(rep=1), 3),
        (DealFilter(account="ACME"), 2),
        (DealFilter(account="bolt works"), 2),  # punctuation-insensitive
        (DealFilter(product="alpha"), 4),
        (DealFilter(series="a"), 4),
        (DealFilter(sector="Tech"), 5),
        (DealFilter(manager="mia moss"), 5),
        (DealFilter(stages=["engaging", "Prospecting"]), 3),
        (DealFilter(stages="Closed Won"), 3),
        (DealFilter(status="open"), 3),
        (DealFilter(status="closed"), 5),
        (DealFilter(status="lost", rep="Cid Cole"), 1),
        (DealFilter(engaged_from=D(2017, 1, 1), engaged_to=D(2017, 1, 31)), 3),
        (DealFilter(closed_from=D(2017, 2, 1), closed_to=D(2017, 2, 28)), 2),
        (DealFilter(engaged_from=D(2018, 1, 1)), 0),
    ],
)
def test_filters(s: Session, f: DealFilter, deals: int) -> None:
    (row,) = deal_metrics(s, f)
    assert row.deals == deals


def test_empty_slice_gives_one_zero_row(s: Session) -> None:
    (row,) = deal_metrics(s, DealFilter(engaged_from=D(2018, 1, 1)))
    assert (row.deals, row.won_value, row.win_rate, row.avg_cycle_days) == (0, 0, None, None)
    (row,) = deal_metrics(s, DealFilter(status="open"))
    assert row.win_rate is None  # nothing closed: no win rate, not 0 %


@pytest.mark.parametrize(
    ("f", "field"),
    [
        (DealFilter(rep="Nobody"), "rep"),
        (DealFilter(rep=999), "rep"),
        (DealFilter(account="Nope"), "account"),
        (DealFilter(product="Gamma"), "product"),
        (DealFilter(office="North"), "office"),
        (DealFilter(manager="Zed"), "manager"),
        (DealFilter(series="Z"), "series"),
        (DealFilter(sector="mining"), "sector"),
        (DealFilter(stages=["limbo"]), "stages"),
        (DealFilter(engaged_from=D(2017, 2, 1), engaged_to=D(2017, 1, 1)), "engaged_to"),
    ],
)
def test_unknown_filter_values_name_the_field(s: Session, f: DealFilter, field: str) -> None:
    with pytest.raises(Invalid) as err:
        deal_metrics(s, f)
    assert err.value.field == field


def test_bad_grouping_or_ordering(s: Session) -> None:
    with pytest.raises(Invalid) as err:
        deal_metrics(s, group_by="planet")  # type: ignore[arg-type]
    assert err.value.field == "group_by"
    with pytest.raises(Invalid) as err:
        deal_metrics(s, order_by="luck")  # type: ignore[arg-type]
    assert err.value.field == "order_by"


def test_pipeline_summary(s: Session) -> None:
    summary = pipeline_summary(s)
    assert (summary.total_deals, summary.open, summary.won, summary.lost) == (8, 3, 3, 2)
    assert summary.win_rate == 60.0
    assert summary.won_value == 2120
    assert [(b.stage, b.deals, b.value) for b in summary.by_stage] == [
        ("prospecting", 1, 1000.0),  # d6 at Beta's list price
        ("engaging", 2, 900.0),  # d5 at Alpha's list price 100 + d7 800
        ("qualified", 0, 0.0),
        ("proposal", 0, 0.0),
        ("negotiation", 0, 0.0),
        ("won", 3, 2120.0),
        ("lost", 2, 0.0),
    ]
    assert summary.by_stage[5].name == "Closed Won"
    ann = pipeline_summary(s, rep="Ann Ames")
    assert (ann.total_deals, ann.win_rate) == (3, 66.7)  # one decimal here
    assert pipeline_summary(s, office="West", product="Beta").total_deals == 2
    assert pipeline_summary(s, account="Acme").won_value == 1020
    assert pipeline_summary(s, filter=DealFilter(status="open")).win_rate is None


def test_account_facts(s: Session) -> None:
    assert [(c.sector, c.accounts) for c in accounts_by_sector(s)] == [("retail", 1), ("tech", 2)]
    assert accounts_by_sector(s, "TECH")[0].accounts == 2
    assert accounts_by_sector(s, "mining")[0].accounts == 0
    assert [a.name for a in subsidiaries(s, "acme")] == ["Bolt-Works"]
    assert subsidiaries(s, "Core") == []
    parent = parent_account(s, "Bolt-Works")
    assert parent is not None and parent.name == "Acme"
    assert parent_account(s, "Acme") is None
    profile = account_profile(s, "acme")
    assert profile.account.name == "Acme" and profile.account.sector == "tech"
    assert [a.name for a in profile.subsidiaries] == ["Bolt-Works"]
    assert profile.metrics.won_value == 1020 and profile.metrics.deals == 2
    with pytest.raises(NotFound, match="account 'Nope' not found"):
        account_profile(s, "Nope")


def test_rep_facts(s: Session) -> None:
    ann = rep_profile(s, "ann ames")
    assert (ann.rep.manager, ann.rep.regional_office) == ("Mia Moss", "East")
    assert ann.teammates == ["Bob Burr"]
    assert ann.metrics.won == 2
    assert [r.name for r in team_of(s, "MIA MOSS")] == ["Ann Ames", "Bob Burr"]
    assert list_managers(s) == ["Max Mohr", "Mia Moss"]
    assert list_offices(s) == ["East", "West"]
    with pytest.raises(Invalid):
        team_of(s, "Nobody")
    with pytest.raises(NotFound):
        rep_profile(s, "Nobody")


def test_stuck_deals(s: Session) -> None:
    assert reference_date(s) == D(2017, 3, 20)  # the latest date in the data, not the wall clock
    stuck = stuck_deals(s, "engaging", 30, as_of=D(2017, 4, 30))
    assert [(d.deal.external_id, d.in_stage_since, d.days_in_stage) for d in stuck] == [
        ("d5", D(2017, 3, 1), 60),
        ("d7", D(2017, 3, 15), 46),
    ]
    assert [d.deal.external_id for d in stuck_deals(s, "Engaging", 50, as_of=D(2017, 4, 30))] == ["d5"]
    # default as_of = reference date 2017-03-20: d5 19 days in stage, d7 5 days
    assert [d.deal.external_id for d in stuck_deals(s, "engaging", 10)] == ["d5"]
    # a recorded move into the stage (not by an import) restarts the clock
    d5 = s.query(Deal).filter_by(external_id="d5").one()
    s.add(
        DealStageHistory(
            deal_id=d5.id,
            from_stage="prospecting",
            to_stage="engaging",
            changed_by="ann",
            changed_at=dt.datetime(2017, 4, 25, tzinfo=dt.UTC),
        )
    )
    s.add(
        DealStageHistory(
            deal_id=d5.id,
            from_stage="prospecting",
            to_stage="engaging",
            changed_by="import",
            changed_at=dt.datetime(2017, 4, 29, tzinfo=dt.UTC),
        )
    )
    s.flush()
    assert [d.deal.external_id for d in stuck_deals(s, "engaging", 30, as_of=D(2017, 4, 30))] == ["d7"]
    assert [
        d.deal.external_id
        for d in stuck_deals(s, "engaging", 30, D(2017, 4, 30), filter=DealFilter(rep="Bob Burr"))
    ] == []
    with pytest.raises(Invalid):
        stuck_deals(s, "won", 10)
    with pytest.raises(Invalid):
        stuck_deals(s, "limbo", 10)


def test_lookups(s: Session) -> None:
    assert [a.name for a in find_accounts(s, "acme")] == ["Acme"]
    assert [a.name for a in find_accounts(s, "bolt works")] == ["Bolt-Works"]  # punctuation ignored
    assert [a.name for a in find_accounts(s, "co")] == ["Core"]  # prefix
    assert [a.name for a in find_accounts(s, "o")] == ["Bolt-Works", "Core"]  # contains
    assert find_accounts(s, "zzz") == [] and find_accounts(s, "  ") == []
    assert [r.name for r in find_reps(s, "bob")] == ["Bob Burr"]
    assert [r.name for r in find_reps(s, "cole")] == ["Cid Cole"]
    assert [p.name for p in find_products(s, "BETA")] == ["Beta"]
    assert find_products(s, "beta")[0].list_price == 1000.0
