"""`tools.formatting`: the helpers that write a derived count return the fact that states it (the
grounding guard shows a reply only when every number in it is a fact)."""

from __future__ import annotations

from tools.formatting import compared_across, names_and_more


def test_helpers_return_the_count_they_write() -> None:
    listed = names_and_more([f"N{i}" for i in range(5)], 3)
    assert listed.text == "N0, N1, N2 and 2 more"
    assert listed.facts == [{"metric": "more_items", "value": 2}]
    assert names_and_more(["A", "B"], 3) == ("A and B", [])
    assert names_and_more(["A", "B"], 2, total=9).facts == [{"metric": "more_items", "value": 7}]
    across = compared_across(7, "product")
    assert across.text == "(Compared across 7 products.)"
    assert across.facts == [{"metric": "groups_compared", "value": 7}]
