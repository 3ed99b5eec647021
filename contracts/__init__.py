"""The types that cross the layers of the chat stack (graphs, crews, tools, guards, the API),
each defined once. Pydantic only: this package imports nothing of Flowstate above `config`.

- `contracts.chat`: intents, resolved entities, the crew request and response, citations and
  proposed actions;
- `contracts.outcomes`: why a turn failed, the rep's decision on an action and what came of it;
- `contracts.guards`: the guards' verdicts and decision on a crew response;
- `contracts.fields`: the field types of what clients send (ids, NUL-free text, JSON objects).
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
from contracts.fields import MAX_ID, Email, JsonObject, Omittable, RecordId, Text
from contracts.guards import GuardAction, GuardDecision, GuardOutcome, Verdict
from contracts.outcomes import ActionMeta, ActionResult, ApprovalDecision, ResumeValue, TurnError

__all__ = [
    "INTENTS",
    "MAX_ID",
    "ActionKind",
    "ActionMeta",
    "ActionResult",
    "ApprovalDecision",
    "CrewRequest",
    "CrewResponse",
    "Email",
    "Entities",
    "EntityKind",
    "EntityRef",
    "GuardAction",
    "GuardDecision",
    "GuardOutcome",
    "Intent",
    "JsonObject",
    "Omittable",
    "Period",
    "ProposedAction",
    "RecordId",
    "ResumeValue",
    "Source",
    "Text",
    "Turn",
    "TurnError",
    "Verdict",
]
