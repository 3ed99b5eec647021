"""`config/guards.yaml`: which validators run for which intent, their on-fail actions and options.

`load_guards_config()` validates the file into `GuardsConfig` (cached); an unknown validator name,
an unknown on-fail action or an intent that names an unconfigured validator raises
`pydantic.ValidationError` naming the field, at start-up rather than mid-turn.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.settings import CONFIG_DIR

ValidatorName = Literal["schema", "privacy", "tone", "discount_policy", "can_spam", "grounding"]
OnFailName = Literal["fix", "reask", "fix_reask", "refrain", "noop"]

#: Text validators (run on the reply and on an outbound draft); `schema` runs on the crew's data.
TEXT_VALIDATORS: tuple[ValidatorName, ...] = ("privacy", "tone", "discount_policy", "can_spam", "grounding")


class ValidatorConfig(BaseModel):
    """One validator: its on-fail action and the options passed to its constructor."""

    model_config = ConfigDict(extra="allow")

    on_fail: OnFailName

    @property
    def options(self) -> dict[str, Any]:
        """Constructor options (everything but on_fail), None values dropped."""
        return {k: v for k, v in (self.model_extra or {}).items() if v is not None}


class GuardsConfig(BaseModel):
    """The whole file. `validators` is ordered: validators run in that order."""

    max_reasks: int = Field(1, ge=0, le=3)
    budget_ms: float = Field(20, gt=0)
    validators: dict[ValidatorName, ValidatorConfig]
    intents: dict[str, list[ValidatorName]]
    allowed_terms: list[str] = []

    @model_validator(mode="after")
    def _check(self) -> GuardsConfig:
        for intent, names in self.intents.items():
            unknown = [n for n in names if n not in self.validators]
            if unknown:
                raise ValueError(f"intents.{intent} names validators with no configuration: {unknown}")
        return self

    def for_intent(self, intent: str) -> list[ValidatorName]:
        """The validators of `intent` in run order (an unknown intent gets the `general` set,
        or every validator when there is none)."""
        wanted = set(self.intents.get(intent) or self.intents.get("general") or self.validators)
        return [n for n in self.validators if n in wanted]


@lru_cache
def load_guards_config(path: Path = CONFIG_DIR / "guards.yaml") -> GuardsConfig:
    """The guards configuration of `config/guards.yaml`."""
    with path.open(encoding="utf-8") as fh:
        return GuardsConfig.model_validate(yaml.safe_load(fh))
