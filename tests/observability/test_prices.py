"""The price table: how model names match and what a call costs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from observability.prices import ModelPrice, PriceTable, load_price_table


def test_shipped_table_prices_the_local_model_at_zero() -> None:
    table = load_price_table()
    cost = table.cost("qwen2.5-coder-1.5b-instruct", 1_000_000, 1_000_000)
    assert cost is not None and cost.total == 0.0
    mini = table.cost("gpt-4o-mini", 1_000_000, 1_000_000)
    assert mini is not None and mini.total > 0


def test_cost_is_usd_per_million_tokens() -> None:
    table = PriceTable(models={"m": ModelPrice(prompt=2.5, completion=10.0)})
    cost = table.cost("m", 2_000, 500)
    assert cost is not None
    assert cost.input == pytest.approx(0.005)
    assert cost.output == pytest.approx(0.005)
    assert cost.as_details() == pytest.approx({"input": 0.005, "output": 0.005, "total": 0.01})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o", 2.5),
        ("openai/gpt-4o-mini", 0.15),
        ("GPT-4o-Mini", 0.15),
        ("gpt-4o-mini-2024-07-18", 0.15),  # dated variant: the longest entry wins
        ("gpt-4o-2024-08-06", 2.5),
        ("gpt-4o2", None),  # not a dated variant
        ("llama-3", None),
        (None, None),
    ],
)
def test_model_names_match(name: str | None, expected: float | None) -> None:
    table = PriceTable(
        models={
            "gpt-4o": ModelPrice(prompt=2.5, completion=10),
            "gpt-4o-mini": ModelPrice(prompt=0.15, completion=0.6),
        }
    )
    price = table.price_of(name)
    assert (price.prompt if price else None) == expected


def test_malformed_table_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  m: {prompt: -1, completion: 2}\n")
    with pytest.raises(ValidationError, match=r"models\.m\.prompt"):
        load_price_table(path)
