"""The chat turn's shared types: what the conversation graph (`graphs/`), the crews (`crews/`),
the tools (`tools/`) and the guards (`guards/`) pass to each other.

The graph resolves entities and the intent, then hands a `CrewRequest` to the crew of that intent
and gets a `CrewResponse` back. Side effects never happen inside a crew: a crew that wants one
returns a `ProposedAction`, the graph pauses for the rep's approval (LangGraph `interrupt()`), and
only then `tools.actions` carries it out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from config.files import intent_names
from contracts.identity import Caller

#: The intents of `config/intents.yaml`, in the file's order (adding an intent is an entry there
#: plus its crew folder, no code change here).
INTENTS: tuple[str, ...] = intent_names()

if TYPE_CHECKING:
    Intent = str
else:
    # A Literal built from the file: pydantic validates a value against INTENTS and every JSON
    # schema that carries an intent (API, constrained LLM output) still enumerates them.
    Intent = Literal[INTENTS]

EntityKind = Literal["account", "contact", "deal", "rep", "manager", "office", "product", "sector", "stage"]


class EntityRef(BaseModel):
    """A CRM record named (or implied) in the conversation. `id` is the database id when the
    entity is a row (account, contact, deal, rep, product); `key` is its natural key (name,
    opportunity id, stage key)."""

    kind: EntityKind
    key: str
    id: int | None = None
    mention: str | None = Field(None, description="the words in the message that named it")


class Period(BaseModel):
    """A date range named in the message (inclusive start, exclusive end), e.g. "March 2017"."""

    start: str  # ISO date
    end: str  # ISO date, exclusive
    label: str


class Entities(BaseModel):
    """Everything resolved from the conversation so far (latest mention first in each list)."""

    items: list[EntityRef] = []
    period: Period | None = None
    #: records the previous answer named, in its order (who "that office", "its", "her", "which of
    #: them" may point at in the next message); set for one resolution, then dropped
    answered: list[EntityRef] = []

    def of(self, kind: EntityKind) -> list[EntityRef]:
        """The entities of one kind, in order."""
        return [e for e in self.items if e.kind == kind]

    def first(self, kind: EntityKind) -> EntityRef | None:
        """The first entity of one kind, or None."""
        return next((e for e in self.items if e.kind == kind), None)


class Source(BaseModel):
    """A record a reply was grounded on (shown to the rep as a citation)."""

    kind: str  # "account" | "deal" | "rep" | "product" | "metric" | "document" | ...
    id: str
    label: str
    data: dict[str, Any] = {}


ActionKind = Literal[
    "move_stage",
    "create_reminder",
    "create_task",
    "queue_email",
    "accept_discount",
    "start_sequence",
    "cancel_sequence",
]


class ProposedAction(BaseModel):
    """A side effect a crew proposes; runs only after the rep approves (or edits) it."""

    kind: ActionKind
    summary: str = Field(description="one line shown to the rep, e.g. 'Move deal 1C1I7A6R to Negotiation'")
    params: dict[str, Any] = {}


class Turn(BaseModel):
    """One earlier message of the thread, for context."""

    role: Literal["user", "assistant"]
    content: str


class CrewRequest(BaseModel):
    """What a crew gets: the rep's message, who asks, the resolved entities and recent history.
    `user_id`: the name events record for the asker (`Caller.actor`); `caller`: who asks, whose
    scope the crew's tools read and act within (None: work no person started, every deal).
    `feedback`: set only when the guards re-ask the crew: why its previous answer was not shown
    and how to answer instead; crews add it to the model's prompt."""

    message: str
    intent: Intent
    user_id: str | None = None
    caller: Caller | None = None
    thread_id: str | None = None
    entities: Entities = Entities()
    history: list[Turn] = []
    feedback: str | None = None


class CrewResponse(BaseModel):
    """What a crew returns. `reply` is the text for the rep; `data` the crew's typed output
    (`model_dump()` of its pydantic model); `facts` the tool results the reply may cite (the
    grounding guard checks names and numbers against them)."""

    reply: str
    data: dict[str, Any] = {}
    sources: list[Source] = []
    facts: list[dict[str, Any]] = []
    proposed_action: ProposedAction | None = None
    llm_calls: int = 0
