"""What a question's words settle over the planner's choice (`tools.semantic_words`,
`tools.semantic_plan.complete_query`): pure text, no database."""

from __future__ import annotations

from contracts import Entities, EntityRef
from tools.semantic_plan import SemanticChoice, complete_query
from tools.semantic_words import read_question


def _bounds(message: str) -> list[tuple[str, str, object]]:
    return [(c.field, c.op, c.value) for c in read_question(message).conditions]


def test_measure_and_subject_of_the_common_forms() -> None:
    cases = {
        "How many accounts were founded before 1990?": ("count", "account"),
        "What percentage of our products are in the GTX series?": ("share", "product"),
        "Which sales reps work in the West office?": ("list", "rep"),
        "what share of the customers are in retail": ("share", "account"),
        "Show me all opportunities stuck in engaging": ("list", "deal"),
        "Which of our medical accounts are located abroad?": ("list", "account"),
        "Tell me about Acme": (None, None),
    }
    for message, expected in cases.items():
        words = read_question(message)
        assert (words.measure, words.subject) == expected, message


def test_figures_become_conditions_on_the_right_attribute() -> None:
    assert _bounds("retail accounts with more than 1,000 employees") == [("account.employees", "gt", 1000.0)]
    assert _bounds("companies with at least 5k staff") == [("account.employees", "gte", 5000.0)]
    assert _bounds("accounts founded after 2000") == [("account.year_established", "gt", 2000.0)]
    assert _bounds("established before 1990") == [("account.year_established", "lt", 1990.0)]
    assert _bounds("products priced under $1,000") == [("product.list_price", "lt", 1000.0)]
    assert _bounds("accounts with revenue above 1 billion") == [("account.revenue_musd", "gt", 1000.0)]
    assert _bounds("accounts with revenue above 500 million") == [("account.revenue_musd", "gt", 500.0)]
    assert _bounds("How many deals did we win in 2017?") == []


def test_the_words_win_over_a_model_that_fills_every_part() -> None:
    noisy = SemanticChoice(
        subject="account",
        measure="count_distinct",
        field="account.name",
        group_by="account.location",
        rank="highest",
        top_n=3,
        conditions=[{"field": "account.year_established", "op": "gt", "value": 1990}],  # type: ignore[list-item]
        having=[{"metric": "won", "op": "eq", "value": 0}],  # type: ignore[list-item]
    )
    q = complete_query(noisy, Entities(), "How many accounts were founded before 1990?")
    assert q.measure == "count" and q.field is None
    assert q.group_by is None and q.order_by is None and q.having == []
    assert [(c.field, c.op, c.value) for c in q.where] == [("account.year_established", "lt", 1990.0)]


def test_a_share_takes_the_named_condition_as_its_part() -> None:
    retail = Entities(items=[EntityRef(kind="sector", key="retail", mention="retail")])
    choice = SemanticChoice(subject="account", measure="list")
    q = complete_query(choice, retail, "What percentage of our accounts are in the retail sector?")
    assert q.measure == "share" and q.where == []
    assert [(c.field, c.value) for c in q.share_where] == [("account.sector", "retail")]
    # a count of deals asked as a deal metric stays a metric
    won = SemanticChoice(subject="deal", measure="metric", metric="won")
    assert complete_query(won, Entities(), "How many deals did we win?").measure == "metric"
