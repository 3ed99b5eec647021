"""What the graph's nodes depend on, passed as LangGraph's runtime context (`context_schema`),
never as globals: a frozen record of ready objects and limits, built once by the composition
root (`app.services.context.build_context`) and shared by every turn::

    ctx = build_context(settings, endpoints)                      # the app
    ctx = replace(real_context(engine, llm, embedder), router=FakeRouter())  # a test
    await graph.ainvoke(turn_input("hi", None), config, context=ctx)

Nothing here builds anything or reads settings: each field is what a node calls, typed by the
Protocol below that the real part and the tests' fakes both satisfy. A graph run without a
context (`langgraph dev` on `graphs.graph:graph`) fails in its first node with a message naming
what is missing.

The parts (blocking ones run in a worker thread, so LangGraph's stream writer and config follow):

- `resolver.resolve(message, previous) -> Entities` (blocking; deterministic, no LLM);
- `router.aclassify(message, previous_intent, entities) -> IntentResult` (async;
  `graphs.intent.IntentRouter`);
- `crews(request, deps) -> CrewResponse` (async; `crews.registry.run_crew`), with `deps` =
  `crew_deps`;
- `guard.check(request, response, attempt) -> contracts.GuardOutcome` (blocking;
  `graphs.adapters.CrmGuard`); `guard` None: replies are not checked (tests of the graph's
  plumbing only: the app always guards);
- `actions.execute(action, meta) -> dict` (blocking; writes the change and its Event, raises
  `crm.errors.DomainError` when the CRM refuses it) and `actions.record(kind, payload, meta)`
  (blocking; an Event for a decision that changes nothing, or the guards' verdicts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from contracts import (
    ActionMeta,
    CrewRequest,
    CrewResponse,
    Entities,
    GuardOutcome,
    Intent,
    ProposedAction,
)
from contracts.identity import Caller

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from crews.registry import CrewDeps
    from graphs.intent import IntentResult
    from llm import LLMConfig


class EntityResolver(Protocol):
    """Finds the CRM records and the period a message names (`graphs.adapters.CrmResolver`)."""

    def resolve(self, message: str, previous: Entities) -> Entities:
        """The entities of `message`; `previous` (the thread's entities so far) is kept for a
        follow-up that names nothing. Blocking."""
        ...


class IntentClassifier(Protocol):
    """Picks the intent of a message (`graphs.intent.IntentRouter`)."""

    async def aclassify(
        self, message: str, previous_intent: Intent | None = None, entities: Entities | None = None
    ) -> IntentResult:
        """The intent of `message`, given the previous turn's intent and the resolved entities."""
        ...


class CrewRunner(Protocol):
    """Runs the crew of `request.intent` (`crews.registry.run_crew`)."""

    async def __call__(self, request: CrewRequest, deps: CrewDeps, /) -> CrewResponse: ...


class ReplyGuard(Protocol):
    """Checks a crew response before it is shown (`graphs.adapters.CrmGuard`)."""

    def check(self, request: CrewRequest, response: CrewResponse, attempt: int) -> GuardOutcome:
        """The guards' decision on `response`; `attempt`: 0 for the crew's first answer, n after
        the n-th re-ask. Blocking; raises when the checks cannot run (the node fails closed)."""
        ...


class ActionLog(Protocol):
    """Carries out approved actions and appends Events (`graphs.adapters.CrmActions`)."""

    def execute(self, action: ProposedAction, meta: ActionMeta) -> dict[str, Any]:
        """Apply `action` and write its Event in one transaction; the result for the rep.
        Raises `crm.errors.DomainError` when the CRM refuses it. Blocking."""
        ...

    def record(self, kind: str, payload: dict[str, Any], meta: ActionMeta) -> None:
        """Append an Event of `kind` (payload's int `account_id` / `deal_id` become its keys).
        Blocking."""
        ...


@runtime_checkable
class Warmable(Protocol):
    """A part that can load, before the first turn, what that turn would otherwise wait for."""

    def warm(self) -> None: ...


@dataclass(frozen=True)
class ChatContext:
    """Run-scoped dependencies of the chat graph (LangGraph `context_schema`); see the module
    docstring for what each part does.

    - `engine`: the CRM database the real parts work on (None only where no part needs one:
      tests of the graph's plumbing). The context owns nothing: whoever built it disposes it.
    - `llm`: endpoint, model, timeout (s) and max_tokens of the turn's LLM calls.
    - `crew_deps`: what every crew run gets (engine, LLM config, embedder).
    - `crew_attempts`: tries of a crew after a *transient* failure (connection refused, HTTP
      5xx), 1 = no retry; `crew_timeout_s`: wall-clock cap of one crew run (None: 3 x the LLM
      timeout, because a crew makes up to three LLM calls).
    - `history_turns`: earlier messages handed to the crews (prompts stay short).
    - `stream_chunk_chars`: the size past which ready text is cut into several token frames (at
      word boundaries). Text goes out as soon as it is checked (a sentence of a streaming crew,
      the whole reply of one that does not), in one frame below this size: cutting ready text
      finer sends it no sooner and costs a WebSocket frame each (a briefing took about 15 frames
      at 16 characters).
    - `caller`: who this run is for (`contracts.identity.Caller`): the crews' tools read and act
      within the caller's scope, and a decision on an action records `caller.actor`. Set per
      run by the engine (`dataclasses.replace(ctx, caller=...)`: plain data, never
      checkpointed); None for work no person started (every deal is in scope).
    """

    engine: Engine | None
    llm: LLMConfig
    crew_deps: CrewDeps
    resolver: EntityResolver
    router: IntentClassifier
    crews: CrewRunner
    actions: ActionLog
    guard: ReplyGuard | None
    crew_attempts: int = 2
    crew_timeout_s: float | None = None
    history_turns: int = 6
    stream_chunk_chars: int = 2000
    caller: Caller | None = None

    @property
    def crew_deadline_s(self) -> float:
        """Wall-clock cap of one crew run, in seconds."""
        return self.crew_timeout_s if self.crew_timeout_s is not None else 3 * self.llm.timeout_s
