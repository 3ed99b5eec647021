"""Acceptance test of the domain: it answers every factual dev question exactly.

The Maven export is imported once for this module; each line of `crm_questions_dev.jsonl` is mapped
(by its id, in QUERIES below) to a call of `crm.analytics`, and the result is compared with the
expected answer: numbers within the line's tolerance, names exactly (`text`: one of the answers,
`set`: all of them and nothing else).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

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
    pipeline_summary,
    reference_date,
    rep_profile,
    stuck_deals,
    subsidiaries,
)
from crm.schemas import MetricsRow
from tests.conftest import EVAL_DIR

QUESTIONS = [
    json.loads(line)
    for line in (EVAL_DIR / "crm_questions_dev.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


def _m(s: Session, **filters: Any) -> MetricsRow:
    return deal_metrics(s, DealFilter(**filters))[0]


def _month(year: int, month: int) -> dict[str, dt.date]:
    first = dt.date(year, month, 1)
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return {"engaged_from": first, "engaged_to": nxt - dt.timedelta(days=1)}


def _top(s: Session, group_by: Any, **filters: Any) -> str | None:
    rows = deal_metrics(s, DealFilter(**filters), group_by, order_by="won_value", limit=1)
    return rows[0].group


QUERIES: dict[str, Callable[[Session], Any]] = {
    "q000": lambda s: _m(s, rep="Kary Hendrixson").won,
    "q001": lambda s: _m(s, **_month(2017, 3)).deals,
    "q002": lambda s: _m(s, account="dambase").max_won_value,
    "q003": lambda s: _top(s, "product"),
    "q004": lambda s: [a.name for a in subsidiaries(s, "Warephase")],
    "q005": lambda s: _m(s, rep="Kami Bicknell").avg_cycle_days,
    "q006": lambda s: accounts_by_sector(s, "software")[0].accounts,
    "q007": lambda s: [a.name for a in subsidiaries(s, "Inity")],
    "q008": lambda s: _m(s, product="MG Advanced").won_value,
    "q009": lambda s: _m(s, account="Xx-holding").won_value,
    "q010": lambda s: _m(s, account="Yearin").open,
    "q011": lambda s: _m(s, account="Faxquote").open,
    "q012": lambda s: _m(s, product="GTX Basic").won_value,
    "q013": lambda s: _m(s, product="GTX Plus Pro").avg_won_value,
    "q014": lambda s: _top(s, "rep", office="West"),
    "q015": lambda s: _m(s, account="Ontomedia").max_won_value,
    "q016": lambda s: _m(s, rep="Kami Bicknell").win_rate,
    "q017": lambda s: _m(s, account="Silis").won_value,
    "q018": lambda s: _m(s, account="Zotware").won_value,
    "q019": lambda s: accounts_by_sector(s, "employment")[0].accounts,
    "q020": lambda s: account_profile(s, "Statholdings").account.sector,
    "q021": lambda s: _m(s, account="Sunnamplex").open,
    "q022": lambda s: _m(s, rep="Darcel Schlecht").won,
    "q023": lambda s: _m(s, account="Bluth Company").max_won_value,
    "q024": lambda s: _top(s, "rep", office="East"),
    "q025": lambda s: _m(s, account="Ganjaflex").open,
    "q026": lambda s: _m(s, account="J-Texon").max_won_value,
    "q027": lambda s: _m(s, product="GTX Plus Basic").avg_won_value,
    "q028": lambda s: _m(s, rep="Wilburn Farren").open,
    "q029": lambda s: rep_profile(s, "Zane Levy").rep.manager,
    "q030": lambda s: account_profile(s, "Konmatfix").account.sector,
    "q031": lambda s: account_profile(s, "Kan-code").account.sector,
    "q032": lambda s: _m(s, account="Donware").open,
    "q033": lambda s: _m(s, rep="Violet Mclelland").win_rate,
    "q034": lambda s: _m(s, office="Central").win_rate,
    "q035": lambda s: _m(s, account="Vehement Capital Partners").open,
    "q036": lambda s: _m(s, product="GTX Plus Basic").won_value,
    "q037": lambda s: accounts_by_sector(s, "telecommunications")[0].accounts,
    "q038": lambda s: account_profile(s, "Plexzap").account.sector,
    "q039": lambda s: _m(s, rep="Rosie Papadopoulos").open,
    "q040": lambda s: _m(s, rep="Markita Hansen").won,
    "q041": lambda s: _m(s, rep="Anna Snelling").open,
    "q042": lambda s: _m(s, account="Hottechi").won_value,
    "q043": lambda s: _m(s, product="GTX Basic").avg_won_value,
    "q044": lambda s: _m(s, product="GTK 500").won_value,
    "q045": lambda s: _m(s, product="MG Advanced").avg_won_value,
    "q046": lambda s: accounts_by_sector(s, "technology")[0].accounts,
    "q047": lambda s: _m(s, **_month(2017, 11)).deals,
    "q048": lambda s: _m(s, rep="Vicki Laflamme").won,
    "q049": lambda s: _m(s, product="GTX Plus Pro").won_value,
    "q050": lambda s: _m(s, office="East").win_rate,
    "q051": lambda s: _m(s, account="Initech").won_value,
    "q052": lambda s: _m(s, rep="Cassey Cress").open,
    "q053": lambda s: _m(s, account="Xx-zobam").open,
    "q054": lambda s: _m(s, account="Dalttechnology").open,
    "q055": lambda s: accounts_by_sector(s, "marketing")[0].accounts,
    "q056": lambda s: _m(s, account="Blackzim").won_value,
    "q057": lambda s: _m(s, **_month(2017, 8)).deals,
    "q058": lambda s: rep_profile(s, "Donn Cantrell").rep.manager,
    "q059": lambda s: _m(s, rep="Boris Faz").win_rate,
    "q060": lambda s: _m(s, account="Umbrella Corporation").max_won_value,
    "q061": lambda s: rep_profile(s, "James Ascencio").rep.manager,
    "q062": lambda s: _m(s, rep="Jonathan Berthelot").win_rate,
    "q063": lambda s: _m(s, account="The New York Inquirer").won_value,
    "q064": lambda s: accounts_by_sector(s, "services")[0].accounts,
    "q065": lambda s: accounts_by_sector(s, "retail")[0].accounts,
    "q066": lambda s: rep_profile(s, "Reed Clapper").rep.manager,
}


@pytest.fixture(scope="module")
def maven(maven_db: Engine) -> Iterator[Session]:
    """A session over a CRM holding exactly the Maven export."""
    with Session(maven_db) as session:
        yield session


def test_every_question_has_a_query() -> None:
    assert sorted(QUERIES) == sorted(q["id"] for q in QUESTIONS)


@pytest.mark.parametrize("q", QUESTIONS, ids=[q["id"] for q in QUESTIONS])
def test_question(maven: Session, q: dict[str, Any]) -> None:
    got = QUERIES[q["id"]](maven)
    kind, answer = q["kind"], q["answer"]
    if kind in ("number", "percent"):
        assert got is not None, q["message"]
        assert abs(float(got) - float(answer)) <= float(q.get("tolerance", 0)), (q["message"], got, answer)
    elif kind == "text":
        assert got in answer, (q["message"], got, answer)
    elif kind == "set":
        assert sorted(got) == sorted(answer), (q["message"], got, answer)
    else:
        pytest.fail(f"unknown kind {kind!r}")


def test_pipeline_summary_of_the_export(maven: Session) -> None:
    summary = pipeline_summary(maven)
    assert summary.total_deals == 8800
    assert (summary.open, summary.won, summary.lost) == (2089, 4238, 2473)
    assert summary.win_rate == 63.2
    # every configured stage, in pipeline order, even the empty ones
    assert [(s.stage, s.deals) for s in summary.by_stage] == [
        ("prospecting", 500),
        ("engaging", 1589),
        ("qualified", 0),
        ("proposal", 0),
        ("negotiation", 0),
        ("won", 4238),
        ("lost", 2473),
    ]
    lost = next(s for s in summary.by_stage if s.stage == "lost")
    assert lost.value == 0
    won = next(s for s in summary.by_stage if s.stage == "won")
    assert won.value == summary.won_value == pytest.approx(10_005_534, abs=1)


def test_general_layer_on_the_export(maven: Session) -> None:
    """Beyond the dev questions: groupings add up, "today" is the data's, names resolve loosely."""
    (total,) = deal_metrics(maven)
    for group_by in ("rep", "office", "product", "sector", "engage_month"):
        rows = deal_metrics(maven, group_by=group_by)
        assert sum(r.deals for r in rows) == 8800, group_by
        assert sum(r.won_value for r in rows) == pytest.approx(total.won_value), group_by
    assert len(deal_metrics(maven, group_by="rep")) == 30  # 5 of the 35 agents have no deals
    assert reference_date(maven) == dt.date(2017, 12, 31)
    assert [p.name for p in find_products(maven, "GTXPro")] == ["GTX Pro"]
    assert [a.name for a in find_accounts(maven, "xx holding")] == ["Xx-holding"]
    assert accounts_by_sector(maven, "technology")[0].accounts == 12  # repaired from "technolgy"
    # imported history carries the import's time, so time in stage falls back to engage_date
    stuck = stuck_deals(maven, "engaging", 300)
    assert stuck and all(d.days_in_stage > 300 and d.deal.stage == "engaging" for d in stuck)
    assert stuck[0].in_stage_since == stuck[0].deal.engage_date
