"""The guards' input type: what the graph passes in (`GuardContext`). Their output,
`contracts.GuardOutcome` with one `contracts.Verdict` per validator and target, is a shared type."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel

from contracts.guards import GuardAction, GuardDecision, GuardOutcome, Verdict
from crm.names import NameIndex

__all__ = ["GuardAction", "GuardContext", "GuardDecision", "GuardOutcome", "Verdict"]


@dataclass(frozen=True)
class GuardContext:
    """What the validators need besides the crew's response; the caller gathers it (no database
    or LLM call happens inside the guards).

    - `intent`: picks the validators (config/guards.yaml);
    - `message`: the rep's message (its names and figures count as grounded);
    - `known_names`: the CRM's name index (`crm.names.NameIndex`, built once and cached by the
      caller) or plain names: accounts, contacts, reps, managers, products, deal ids, stage,
      sector, office and country names;
    - `allowed_pii`: emails/phones of the CRM record being discussed (not redacted);
    - `attempt`: 0 for the crew's first answer, 1 after a re-ask (then failures that would re-ask
      give the safe reply instead);
    - `output_model`: the crew's pydantic output model, for the schema validator;
    - `is_email`: the reply is an outbound email draft (None: detect it);
    - `list_price`: the deal's product list price, to read "$X off" as a percentage;
    - `extra_facts` / `allowed_numbers`: more grounding material than `response.facts`.
    """

    intent: str = "general"
    message: str = ""
    known_names: NameIndex | Iterable[str] | None = None
    allowed_pii: Sequence[str] = ()
    attempt: int = 0
    output_model: type[BaseModel] | None = None
    is_email: bool | None = None
    list_price: float | None = None
    extra_facts: Sequence[Mapping[str, Any]] = ()
    allowed_numbers: Sequence[float] = field(default_factory=tuple)

    def next_attempt(self) -> GuardContext:
        """The context for checking the crew's answer to a re-ask."""
        return replace(self, attempt=self.attempt + 1)
