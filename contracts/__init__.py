"""The types that cross the layers of the chat stack (graphs, crews, tools, guards, the API),
each defined once. Pydantic only: this package imports nothing of Flowstate above `config`.

- `contracts.chat`: intents, resolved entities, the crew request and response, citations and
  proposed actions;
- `contracts.outcomes`: why a turn failed, the rep's decision on an action and what came of it;
- `contracts.guards`: the guards' verdicts and decision on a crew response.
"""

from contracts.chat import (
    INTENTS,
    ActionKind,
    CrewRequest,
    CrewResponse,
    Entities,
    EntityKind,
    EntityRef,
    Intent,
    Period,
    ProposedAction,
    Source,
    Turn,
)
from contracts.guards import GuardAction, GuardDecision, GuardOutcome, Verdict
from contracts.outcomes import ActionMeta, ActionResult, ApprovalDecision, ResumeValue, TurnError

__all__ = [
    "INTENTS",
    "ActionKind",
    "ActionMeta",
    "ActionResult",
    "ApprovalDecision",
    "CrewRequest",
    "CrewResponse",
    "Entities",
    "EntityKind",
    "EntityRef",
    "GuardAction",
    "GuardDecision",
    "GuardOutcome",
    "Intent",
    "Period",
    "ProposedAction",
    "ResumeValue",
    "Source",
    "Turn",
    "TurnError",
    "Verdict",
]
