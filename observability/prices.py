"""The LLM price table (`config/prices.yaml`) and the cost of a call.

Prices are US dollars per 1,000,000 tokens, prompt and completion apart, the unit OpenAI's price
list uses. The cost of one call is `prompt_tokens * prompt / 1e6 + completion_tokens *
completion / 1e6` USD. Used for the `cost_details` of every Langfuse generation (see
`observability.tracing`) and for `flowstate_llm_cost_usd_total` (see `observability.llm_meter`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field

from config.settings import CONFIG_DIR

PRICES_FILE = CONFIG_DIR / "prices.yaml"


class ModelPrice(BaseModel):
    """USD per 1M tokens."""

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)


class Cost(BaseModel):
    """The cost of one call in USD, in Langfuse's `cost_details` keys (`input`, `output`,
    `total`)."""

    input: float
    output: float
    total: float

    def as_details(self) -> dict[str, float]:
        return {"input": self.input, "output": self.output, "total": self.total}


class PriceTable(BaseModel):
    """Model name -> price. See `config/prices.yaml` for how names match."""

    currency: Literal["USD"] = "USD"
    per_tokens: Literal[1_000_000] = 1_000_000
    models: dict[str, ModelPrice] = {}

    def price_of(self, model: str | None) -> ModelPrice | None:
        """The price of `model`: exact name, then without a `provider/` prefix, then
        case-insensitive, then the longest entry `E` such that the name is `E-<suffix>` (dated
        variants such as `gpt-4o-mini-2024-07-18`). None when nothing matches."""
        if not model:
            return None
        candidates = [model]
        if "/" in model:
            candidates.append(model.rsplit("/", 1)[1])
        for name in candidates:
            if name in self.models:
                return self.models[name]
        lowered = {k.lower(): v for k, v in self.models.items()}
        for name in candidates:
            if name.lower() in lowered:
                return lowered[name.lower()]
        best: tuple[int, ModelPrice] | None = None
        for name in candidates:
            low = name.lower()
            for key, price in lowered.items():
                if low.startswith(key + "-") and (best is None or len(key) > best[0]):
                    best = (len(key), price)
        return None if best is None else best[1]

    def cost(self, model: str | None, prompt_tokens: int, completion_tokens: int) -> Cost | None:
        """USD cost of one call, or None when the model has no price."""
        price = self.price_of(model)
        if price is None:
            return None
        cost_in = prompt_tokens * price.prompt / self.per_tokens
        cost_out = completion_tokens * price.completion / self.per_tokens
        return Cost(input=cost_in, output=cost_out, total=cost_in + cost_out)


def load_price_table(path: Path | None = None) -> PriceTable:
    """Read and validate a price file (default `config/prices.yaml`). A missing default file
    yields an empty table; a malformed file raises `pydantic.ValidationError` naming the field."""
    path = PRICES_FILE if path is None else path
    if path == PRICES_FILE and not path.exists():
        return PriceTable()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return PriceTable.model_validate(data)


@lru_cache(maxsize=1)
def default_price_table() -> PriceTable:
    """`config/prices.yaml`, read once."""
    return load_price_table()


_override: PriceTable | None = None


def use_price_table(table: PriceTable | None) -> None:
    """Make `table` the price table of this process (None: back to `config/prices.yaml`).
    `setup_tracing(settings, prices=...)` and tests call it."""
    global _override
    _override = table


def active_price_table() -> PriceTable:
    """The price table in use: the one set by :func:`use_price_table`, else the default file."""
    return _override if _override is not None else default_price_table()
