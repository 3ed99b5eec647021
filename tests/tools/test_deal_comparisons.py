"""Comparisons of two records, shares, ranked places and filters the single-figure rules read,
on the small CRM of conftest (figures by hand in its docstring)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from contracts import Entities
from crm.db import session_scope
from tests.tools.conftest import CRM
from tools.deal_comparisons import special_answer
from tools.pipeline_answers import compute
from tools.query_plan import plan_from_rules


def _answer(engine: Engine, message: str, crm: CRM, *refs: tuple[str, str]) -> str:
    ents = crm.entities(*refs)
    plan = plan_from_rules(message, ents)
    with session_scope(engine) as s:
        found = special_answer(s, plan, ents, message)
        if found is None:
            assert plan is not None, message
            found = compute(s, plan, ents, message)
    return found.draft


@pytest.mark.parametrize(
    ("message", "refs", "expected"),
    [
        # West (Ann, Bob) won 5,000 + 600 + 4,500; East (Cy) 4,800
        (
            "Which office won more revenue, West or East?",
            [("office", "West"), ("office", "East")],
            "West is higher than East by $5,300.",
        ),
        # GTX Pro: 3 won, 0 lost; MG Advanced: 0 won, 1 lost
        (
            "How much higher is the win rate of GTX Pro than MG Advanced?",
            [("product", "GTX Pro"), ("product", "MG Advanced")],
            "GTX Pro is higher than MG Advanced by 100.0 percentage points.",
        ),
        # Acme: 2 won, 1 lost
        (
            "What percentage of all Acme deals were lost?",
            [("account", "Acme")],
            "33.3% of the deals with Acme",
        ),
        ("Of the deals Ann Alpha has closed, what share did she win?", [("rep", "Ann Alpha")], "66.7%"),
        # GTX Pro won 5,000 + 4,500 + 4,800 of 14,900
        (
            "What share of our won revenue comes from GTX Pro?",
            [("product", "GTX Pro")],
            "GTX Pro accounts for 96.0% of the won revenue ($14,300 of $14,900).",
        ),
        # won revenue by account: Acme 5,600, Gammaco 4,800, Betaco 4,500
        ("Which account has the second-most won revenue?", [], "Gammaco has the second-highest won revenue"),
        ("Name the two accounts with the highest won revenue", [], "1. Acme: $5,600; 2. Gammaco: $4,800"),
        # open deals on the GTX series: D0000005, D0000007; with no account: D0000007
        (
            "How many open deals are there on GTX-series products?",
            [],
            "There are 2 open deals in the GTX series.",
        ),
        (
            "How many open deals have no account attached?",
            [],
            "There is 1 open deal with no account attached.",
        ),
        ("How many deals were closed, won or lost?", [], "There are 5 closed deals"),
        # groups kept by a threshold: win rates Ann 66.7%, Bob 100%, Cy 100%; over all deals 80.0%
        (
            "Which reps have a win rate above 70%?",
            [],
            "2 sales reps have a win rate above 70.0%: Bob Beta: 100.0%; Cy Gamma: 100.0%.",
        ),
        (
            "Which reps have a win rate below the overall rate?",
            [],
            "1 sales rep has a win rate below 80.0% (the figure over all deals): Ann Alpha: 66.7%.",
        ),
        (
            "Which retail accounts have more than 1 open deal?",
            [("sector", "retail")],
            "No account in the retail",
        ),
        # among the reps named: Bob Beta (1 won) and Cy Gamma (1 won, $4,800 > $4,500)
        (
            "Which of them has won the most revenue?",
            [("rep", "Bob Beta"), ("rep", "Cy Gamma")],
            "Cy Gamma has the highest won revenue: $4,800. (Compared across 2 sales reps.)",
        ),
    ],
)
def test_the_rules_read_comparisons_shares_places_and_filters(
    crm_data: CRM, clean_db: Engine, message: str, refs: list[tuple[str, str]], expected: str
) -> None:
    assert expected in _answer(clean_db, message, crm_data, *refs)


@pytest.mark.parametrize(
    "message",
    [
        "Which products are priced under $1,000?",
        "Which retail accounts based outside the United States have open deals?",
    ],
)
def test_a_condition_on_a_records_own_attribute_is_left_to_the_semantic_layer(message: str) -> None:
    assert plan_from_rules(message, Entities()) is None
