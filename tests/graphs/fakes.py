"""Fakes for chat-graph tests: a keyword classifier, a resolver over a fixed name list, and
crews that answer instantly with typed `CrewResponse`s (and propose actions on request).

They stand in for the LLM-backed parts only; the graph, the Redis checkpointer, the database and
`tools.actions.execute` stay real in the tests that use them.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from crews.contracts import (
    CrewRequest,
    CrewResponse,
    Entities,
    EntityRef,
    Intent,
    ProposedAction,
    Source,
    Turn,
)
from graphs.context import ChatContext

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


def fake_classify(
    ctx: ChatContext, message: str, entities: Entities, history: list[Turn], previous: Intent | None
) -> Intent:
    low = message.lower()
    for intent, words in KEYWORDS.items():
        if any(w in low for w in words):
            return intent
    return "general"


#: Names the fake resolver knows: text -> (kind, key).
NAMES: dict[str, tuple[str, str]] = {
    "cancity": ("account", "Cancity"),
    "codehow": ("account", "Codehow"),
    "isdom": ("account", "Isdom"),
    "darcel schlecht": ("rep", "Darcel Schlecht"),
}


def fake_resolve(ctx: ChatContext, message: str, previous: Entities) -> Entities:
    """Names found in the message, else (a follow-up) the previous entities."""
    low = message.lower()
    found = [
        EntityRef(kind=kind, key=key, mention=name)  # type: ignore[arg-type]
        for name, (kind, key) in NAMES.items()
        if name in low
    ]
    deal = re.search(r"\b([0-9A-Z]{8})\b", message)
    if deal:
        found.append(EntityRef(kind="deal", key=deal.group(1)))
    return Entities(items=found) if found else previous


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


def fake_context(engine: Any = None, crews: FakeCrews | None = None, **overrides: Any) -> ChatContext:
    """A ChatContext with the fakes above (and `engine` for the real action/event writers).
    The guard is a pass-through unless `guard=` is given: the fake crews' replies are not
    grounded in any CRM (tests/graphs/test_guard_paths.py runs the real guards)."""
    kwargs: dict[str, Any] = {
        "resolve": fake_resolve,
        "classify": fake_classify,
        "run_crew": crews or FakeCrews(),
        "guard": None,
    }
    return ChatContext(engine=engine, **{**kwargs, **overrides})


@asynccontextmanager
async def redis_saver(redis_url: str, prefix: str | None = None) -> AsyncIterator[Any]:
    """A Redis checkpointer under its own key prefix (tests do not see each other's threads)."""
    from graphs.checkpoint import open_checkpointer
    from graphs.graph import STATE_EXTRA_TYPES

    async with open_checkpointer(
        redis_url, 60, prefix=prefix or f"test:{uuid.uuid4().hex[:8]}", extra_types=STATE_EXTRA_TYPES
    ) as saver:
        yield saver


@asynccontextmanager
async def chat_service(redis_url: str, ctx: ChatContext, prefix: str | None = None) -> AsyncIterator[Any]:
    """A ChatService on a real Redis checkpointer with the given context."""
    from app.services.chat import ChatService
    from graphs.graph import build_graph

    async with redis_saver(redis_url, prefix) as saver:
        yield ChatService(build_graph(saver), ctx, saver)


Factory = Callable[..., Any]
