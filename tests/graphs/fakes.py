"""Fakes for chat-graph tests: a keyword router, a resolver over a fixed name list, and crews
that answer instantly with typed `CrewResponse`s (and propose actions on request).

They stand in for the LLM-backed parts only; the graph, the Redis checkpointer, the database and
`tools.actions.execute` stay real in the tests that use them. `fake_context` builds a
`graphs.context.ChatContext` of them; any part can be swapped by its field name.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from contracts import (
    ActionMeta,
    CrewRequest,
    CrewResponse,
    Entities,
    EntityRef,
    Intent,
    ProposedAction,
    Source,
)
from contracts.identity import Caller
from crews.registry import CrewDeps
from graphs.adapters import CrmActions
from graphs.context import ChatContext
from graphs.intent import IntentResult
from llm import LLMConfig

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: Words that pick each intent (the fake router; the real one is `graphs.intent`).
KEYWORDS: dict[Intent, tuple[str, ...]] = {
    "discovery": ("research", "qualify", "lead"),
    "closing": ("draft", "follow-up", "discount"),
    "delivery": ("onboarding", "status report"),
    "pipeline": ("how many", "win rate", "move deal", "deals"),
    "nba": ("next", "should i"),
    "general": (),
}

#: One message per intent that the fake router sends to that intent.
MESSAGES: dict[Intent, str] = {
    "discovery": "Research Cancity for me",
    "closing": "Draft a follow-up to Cancity",
    "delivery": "We won Codehow, set up onboarding",
    "pipeline": "How many deals has Darcel Schlecht won?",
    "nba": "What should I do next with Isdom?",
    "general": "hello there",
}


def keyword_intent(message: str) -> Intent:
    """The intent of the first `KEYWORDS` entry with a word in `message`, else "general"."""
    low = message.lower()
    for intent, words in KEYWORDS.items():
        if any(w in low for w in words):
            return intent
    return "general"


@dataclass
class FakeRouter:
    """Router stand-in (`graphs.context.IntentClassifier`): `intent` when given, else
    :func:`keyword_intent`; records every call's (message, previous_intent, entities)."""

    intent: Intent | None = None
    calls: list[tuple[str, Intent | None, Entities | None]] = field(default_factory=list)

    async def aclassify(
        self, message: str, previous_intent: Intent | None = None, entities: Entities | None = None
    ) -> IntentResult:
        self.calls.append((message, previous_intent, entities))
        intent = self.intent or keyword_intent(message)
        return IntentResult(intent=intent, confidence=1.0, method="knn")


#: Names the fake resolver knows: text -> (kind, key).
NAMES: dict[str, tuple[str, str]] = {
    "cancity": ("account", "Cancity"),
    "codehow": ("account", "Codehow"),
    "isdom": ("account", "Isdom"),
    "darcel schlecht": ("rep", "Darcel Schlecht"),
}


class FakeResolver:
    """Resolver stand-in (`graphs.context.EntityResolver`) over `NAMES` and 8-character deal ids."""

    def resolve(self, message: str, previous: Entities) -> Entities:
        """Names found in the message, else (a follow-up) the previous entities."""
        low = message.lower()
        found = [
            EntityRef(kind=kind, key=key, mention=name) for name, (kind, key) in NAMES.items() if name in low
        ]
        deal = re.search(r"\b([0-9A-Z]{8})\b", message)
        if deal:
            found.append(EntityRef(kind="deal", key=deal.group(1)))
        return Entities(items=found) if found else previous


class KeepPrevious:
    """Resolver that finds nothing new: the thread's entities stay."""

    def resolve(self, message: str, previous: Entities) -> Entities:
        return previous


@dataclass
class MemoryActions:
    """Action log without a database (`graphs.context.ActionLog`): Events are kept in `events`;
    executing an action fails (the tests that approve actions use the real one)."""

    events: list[tuple[str, dict[str, Any], ActionMeta]] = field(default_factory=list)

    def execute(self, action: ProposedAction, meta: ActionMeta) -> dict[str, Any]:
        raise RuntimeError("no database: use fake_context(engine=...) to carry out actions")

    def record(self, kind: str, payload: dict[str, Any], meta: ActionMeta) -> None:
        self.events.append((kind, payload, meta))


@dataclass
class FakeCrews:
    """`run_crew` stand-in. Records every request; `fail` (a list of exceptions) is raised
    first, one per call; "move deal X to STAGE" proposes a move_stage action."""

    calls: list[CrewRequest] = field(default_factory=list)
    fail: list[BaseException] = field(default_factory=list)
    delay_s: float = 0.0

    async def __call__(self, request: CrewRequest, deps: Any) -> CrewResponse:
        self.calls.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise self.fail.pop(0)
        move = re.search(r"move deal (\S+) to (\w+)", request.message, re.I)
        if move:
            deal, stage = move.group(1), move.group(2)
            return CrewResponse(
                reply=f"Deal {deal} can move to {stage.title()}. Shall I do it?",
                data={"deal": deal, "stage": stage},
                proposed_action=ProposedAction(
                    kind="move_stage",
                    summary=f"Move deal {deal} to {stage.title()}",
                    params={"deal": deal, "stage": stage},
                ),
            )
        keys = ", ".join(e.key for e in request.entities.items) or "nothing"
        return CrewResponse(
            reply=f"[{request.intent}] answer about {keys}.",
            data={"intent": request.intent, "entities": keys},
            sources=[Source(kind="metric", id=f"{request.intent}-1", label=f"{request.intent} facts")],
            facts=[{"answer": 42}],
        )


#: LLM config of contexts whose parts call no model (nothing listens on port 9).
NO_LLM = LLMConfig(base_url="http://127.0.0.1:9/v1", api_key="x", model="fake")


def fake_context(engine: Engine | None = None, crews: Any = None, **overrides: Any) -> ChatContext:
    """A ChatContext of the fakes above; with `engine`, the real action log (`tools.actions`
    and the Event log) on it, else :class:`MemoryActions`. The guard is a pass-through unless
    `guard=` is given: the fake crews' replies are not grounded in any CRM
    (tests/graphs/test_guard_paths.py runs the real guards). `overrides`: other parts or limits
    by their `ChatContext` field name."""
    base = ChatContext(
        engine=engine,
        llm=NO_LLM,
        # the fake crews read no deps; a real crew gets a context from app.services.context
        crew_deps=CrewDeps(engine=cast("Engine", engine), llm=NO_LLM),
        resolver=FakeResolver(),
        router=FakeRouter(),
        crews=crews or FakeCrews(),
        actions=CrmActions(engine) if engine is not None else MemoryActions(),
        guard=None,
    )
    return replace(base, **overrides)


@asynccontextmanager
async def redis_saver(redis_url: str, prefix: str | None = None) -> AsyncIterator[Any]:
    """A Redis checkpointer under its own key prefix (tests do not see each other's threads)."""
    from graphs.checkpoint import open_checkpointer
    from graphs.graph import STATE_EXTRA_TYPES

    async with open_checkpointer(
        redis_url, 60, prefix=prefix or f"test:{uuid.uuid4().hex[:8]}", extra_types=STATE_EXTRA_TYPES
    ) as saver:
        yield saver


#: The caller of the engine tests: an admin (every deal in scope) whose actor is "amy".
AMY = Caller(username="amy", display_name="Amy", role="admin")


async def decide(
    chat: Any, thread_id: str, decision: str, edits: dict[str, Any] | None = None, caller: Caller = AMY
) -> Any:
    """`chat.resume` of `decision` on the action thread `thread_id` waits on (its id read from
    the thread, as a client reads it from the interrupt frame)."""
    from contracts import ResumeValue

    pending = (await chat.get_thread(thread_id, caller=caller)).pending_action
    action_id = pending.id if pending is not None else "none"
    value = ResumeValue.model_validate({"decision": decision, "action_id": action_id, "edits": edits})
    return await chat.resume(thread_id, value, caller=caller)


@asynccontextmanager
async def chat_service(redis_url: str, ctx: ChatContext, prefix: str | None = None) -> AsyncIterator[Any]:
    """A ChatService on a real Redis checkpointer with the given context."""
    from app.services.chat import ChatService
    from graphs.graph import build_graph

    async with redis_saver(redis_url, prefix) as saver:
        yield ChatService(build_graph(saver), ctx, saver)


Factory = Callable[..., Any]
