"""Figures and names: the pure logic under the grounding validator."""

from __future__ import annotations

import pytest

from guards.grounding import check_grounding
from guards.names import NameIndex, unknown_names
from guards.numbers import FactSet, extract_numbers


def _supported(text: str, facts: list[dict[str, object]]) -> list[bool]:
    fs = FactSet.from_facts(facts)
    return [fs.supports(n) for n in extract_numbers(text)]


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ("1,234.5", 1234.5),
        ("1234.5", 1234.5),
        ("63.2%", 63.2),
        ("63.2%", 0.632),  # a ratio shown as a percentage
        ("63%", 63.24),  # rounded to the shown precision
        ("63.1%", 63.16),  # truncated
        ("$4.5K", 4514),
        ("$2.22M", 2216387),
        ("$1.1 billion", 1100.04),  # stored in millions
        ("about 4,500", 4514),
        ("more than 4,000", 4514),
        ("1,000+", 1188),
        ("-5%", -5),
    ],
)
def test_a_fact_supports_its_figure_in_any_format(text: str, fact: float) -> None:
    assert _supported(text, [{"x": fact}]) == [True]


@pytest.mark.parametrize(
    ("text", "fact"),
    [("4,500", 4514), ("64%", 63.2), ("$1.7 million", 169357), ("more than 4,000", 9000), ("412", 349)],
)
def test_a_different_figure_is_not_supported(text: str, fact: float) -> None:
    assert _supported(text, [{"x": fact}]) == [False]


def test_dates_years_ids_and_list_markers_are_not_figures() -> None:
    text = (
        "1. Deal 1C1I7A6R closed on 2017-03-01 (March 1, 2017) at 10:30 am in Q3.\n"
        "2. Call them within 3 days; see step 2. Founded in 1996, the 2nd largest account."
    )
    assert [n.raw for n in extract_numbers(text)] == []


def test_facts_count_their_lists_and_read_numbers_in_strings() -> None:
    fs = FactSet.from_facts([{"kind": "deal", "days": "211 days"}, {"kind": "deal", "items": [1, 2, 3]}])
    assert 211.0 in fs.values
    assert {2, 3} <= fs.counts


def test_known_and_unknown_names(index: NameIndex) -> None:
    ok = "Darcel Schlecht's Cancity deal moved to Negotiation; Darcel will call Gekko & Co. about GTK 500."
    assert unknown_names(ok, index) == []
    bad = {
        "Northwind Traders has 3 open deals.": "Northwind Traders",
        "Talk to John Miller at Isdom.": "John Miller",
        "Globex Industries won twice.": "Globex Industries",
        "Cancity should try the GTX Ultra.": "GTX Ultra",
        "Deal 9Z9Z9Z9Z is open.": "9Z9Z9Z9Z",
        "Moses Frase and Darcel Bicknell share an office.": "Darcel Bicknell",
    }
    for text, name in bad.items():
        assert [u.text for u in unknown_names(text, index)] == [name], text


def test_title_case_headings_are_not_names(index: NameIndex) -> None:
    text = (
        "## Onboarding Plan for Codehow\n- **Offer a Pilot Program**: lower the barrier.\n"
        "Overall Status: On Track\n**Week 3 – Training & Handover**"
    )
    assert unknown_names(text, index) == []


def test_grounding_allows_what_the_rep_said_and_counts(index: NameIndex) -> None:
    facts = [{"kind": "rec", "account": "Isdom"}, {"kind": "rec", "account": "Cancity"}]
    text = "Your top 2 actions: call Isdom, then send Priya Shah the 20-unit quote."
    msg = "Give me my top actions; Priya Shah wants 20 units"
    assert check_grounding(text, index, facts, message=msg) == []
    invented = check_grounding("Your top 2 actions: call Isdom and Priya Shah about 35 units.", index, facts)
    assert [i.text for i in invented] == ["Priya Shah", "35"]
