"""`tools.query_plan`: the rules read what is asked from the words of a message (names masked),
and the plan's filter comes from the resolved entities and period. No database needed."""

from __future__ import annotations

import datetime as dt

from contracts import Entities, EntityRef, Period
from crm.filters import DealFilter
from tools.query_plan import QueryPlan, deal_filter, masked, plan_from_rules

ANN = EntityRef(kind="rep", key="Ann Alpha", id=1, mention="Ann Alpha")


def test_a_count_of_won_deals_for_a_rep() -> None:
    message = "How many deals has Ann Alpha won?"
    ents = Entities(items=[ANN])
    assert masked(message, ents) == "how many deals has <rep_ent> won?"
    plan = plan_from_rules(message, ents)
    assert plan == QueryPlan(metric="won", date_field="close", top_n=10, list_status="won")
    assert deal_filter(plan, ents, message) == DealFilter(rep=1, status="won")


def test_a_ranking_of_groups() -> None:
    plan = plan_from_rules("Which product has the highest total won revenue?", Entities())
    assert plan is not None
    assert (plan.metric, plan.group_by, plan.rank, plan.top_n) == ("won_value", "product", "highest", 1)


def test_a_stage_word_used_as_a_verb_is_no_stage_filter() -> None:
    message = "How many deals did we start engaging in March 2017?"
    ents = Entities(
        items=[EntityRef(kind="stage", key="engaging", mention="engaging")],
        period=Period(start="2017-03-01", end="2017-04-01", label="March 2017"),
    )
    plan = plan_from_rules(message, ents)
    assert plan is not None and plan.metric == "deals" and plan.date_field == "engage"
    assert deal_filter(plan, ents, message) == DealFilter(
        engaged_from=dt.date(2017, 3, 1), engaged_to=dt.date(2017, 3, 31)
    )


def test_stuck_threshold_and_no_rule() -> None:
    plan = plan_from_rules("Which deals have been stuck in engaging for more than 60 days?", Entities())
    assert plan is not None and plan.metric == "stuck_deals" and plan.stuck_days == 60
    message = "Give me the lowdown on Gammaco"
    ents = Entities(items=[EntityRef(kind="account", key="Gammaco", id=3, mention="Gammaco")])
    assert plan_from_rules(message, ents) is None
