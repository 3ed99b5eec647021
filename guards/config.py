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
from contracts.guards import GuardAction

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


def resolve_action(on_fail: OnFailName, has_fix: bool, attempt: int, max_reasks: int) -> GuardAction:
    """What a failed check comes to (`contracts.guards.GuardAction`): "noted" for noop; "fixed"
    when the on-fail action fixes and a safe fix exists; "reask" while re-asks are left
    (`attempt` < `max_reasks`); else "refused" (the safe reply). See config/guards.yaml."""
    if on_fail == "noop":
        return "noted"
    if on_fail in {"fix", "fix_reask"} and has_fix:
        return "fixed"
    if on_fail in {"reask", "fix_reask"} and attempt < max_reasks:
        return "reask"
    return "refused"


def policy_phrases(config: GuardsConfig) -> list[str]:
    """Texts whose words and digits are neither names nor figures to ground: the sender company,
    postal address and unsubscribe line of `config/policies.yaml` (an email's footer) and the
    configured `allowed_terms`."""
    from config.files import load_policies

    p = load_policies().outbound_email
    return [p.sender_company, p.postal_address, p.unsubscribe_line, *config.allowed_terms]


def max_discount_percent(config: GuardsConfig) -> float:
    """The most discount (percent) a reply may grant: the discount_policy validator's
    `max_percent` option, else config/policies.yaml's `discount.max_percent`."""
    validator = config.validators.get("discount_policy")
    option = validator.options.get("max_percent") if validator is not None else None
    if option is not None:
        return float(option)
    from config.files import load_policies

    return float(load_policies().discount.max_percent)


@lru_cache
def load_guards_config(path: Path = CONFIG_DIR / "guards.yaml") -> GuardsConfig:
    """The guards configuration of `config/guards.yaml`."""
    with path.open(encoding="utf-8") as fh:
        return GuardsConfig.model_validate(yaml.safe_load(fh))
