"""What the graph's nodes depend on, passed as LangGraph's runtime context (`context_schema`),
never as globals: engines, LLM configuration, embedder, and the callables that do the work.

Every callable has a real default that imports its module on first use (CrewAI takes ~5 s to
import, Guardrails ~3 s: `import graphs.graph` must stay cheap). Tests and benchmarks inject
fakes::

    ctx = ChatContext(engine=engine, run_crew=fake_run_crew, classify=fake_classify)
    await graph.ainvoke(turn_input("hi", None), config, context=ctx)

A callable may be sync or async; sync ones (database work) run in a worker thread.

Signatures (what the graph calls):

- `resolve(ctx, message, previous: Entities) -> Entities`
- `classify(ctx, message, entities: Entities, history: list[Turn], previous: Intent | None)
  -> Intent` (or an object with `.intent`, e.g. `graphs.intent.IntentResult`; `previous` is the
  intent of the thread's previous turn)
- `run_crew(request: CrewRequest, deps) -> CrewResponse` with `deps = ctx.crew_deps_for()`
- `guard(ctx, request, response) -> GuardOutcome` (default `real_guard`: the guards of issue 4,
  with one re-ask of the crew; None: pass-through, for tests of the graph's plumbing)
- `execute_action(ctx, action: ProposedAction, meta: ActionMeta) -> dict` (writes the change
  and its Event, raises `crm.errors.DomainError` when the CRM refuses it)
- `record_event(ctx, kind, payload, meta: ActionMeta) -> None` (Event log for decisions that
  change nothing, e.g. "action.rejected")
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from crews.contracts import CrewRequest, CrewResponse, Entities, Intent, ProposedAction, Turn
from graphs.llm import LLMConfig

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from config.settings import Settings

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionMeta:
    """Who decided an action, in which conversation, how: stored with its Event.
    `original` is the action as the crew proposed it (before the rep's edits)."""

    actor: str | None
    thread_id: str | None
    decision: str
    original: ProposedAction | None = None


@dataclass
class GuardOutcome:
    """What a guard returns: the (possibly fixed) response and its verdicts (JSON-able dicts,
    e.g. `{"validator": "grounding", "passed": False, "detail": "..."}`)."""

    response: CrewResponse
    verdicts: list[dict[str, Any]] = field(default_factory=list)


ResolveFn = Callable[["ChatContext", str, Entities], Entities | Awaitable[Entities]]
ClassifyFn = Callable[["ChatContext", str, Entities, list[Turn], Intent | None], Any]
RunCrewFn = Callable[[CrewRequest, Any], CrewResponse | Awaitable[CrewResponse]]
GuardFn = Callable[["ChatContext", CrewRequest, CrewResponse], GuardOutcome | Awaitable[GuardOutcome]]
ExecuteFn = Callable[["ChatContext", ProposedAction, ActionMeta], dict[str, Any] | Awaitable[dict[str, Any]]]
EventFn = Callable[["ChatContext", str, dict[str, Any], ActionMeta], Awaitable[None] | None]


async def call(fn: Callable[..., T | Awaitable[T]], *args: Any) -> T:
    """Await `fn(*args)` if `fn` is async, else run it in a worker thread (contextvars, and with
    them LangGraph's stream writer and config, follow the call)."""
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):  # noqa: B004
        return await fn(*args)  # type: ignore[no-any-return,misc]
    result = await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(result):
        return await result  # type: ignore[no-any-return]
    return result


# --------------------------------------------------------------------------------------------
# real implementations (imported on first use)
# --------------------------------------------------------------------------------------------


def real_resolve(ctx: ChatContext, message: str, previous: Entities) -> Entities:
    """`tools.entities.resolve_entities` (cached name index of the CRM) over a sync session."""
    from crm.db import session_scope
    from tools.entities import resolve_entities

    with session_scope(ctx.sync_engine()) as session:
        resolved: Entities = resolve_entities(session, message, previous=previous)
        return resolved


async def real_classify(
    ctx: ChatContext, message: str, entities: Entities, history: list[Turn], previous: Intent | None
) -> Any:
    """`graphs.intent.IntentRouter.aclassify` (nearest examples, then one short LLM call when
    unsure); returns its `IntentResult`."""
    return await ctx.get_intent_router().aclassify(message, previous)


async def real_run_crew(request: CrewRequest, deps: Any) -> CrewResponse:
    """`crews.registry.run_crew` (CrewAI is imported here, on the first crew turn)."""
    from crews.registry import run_crew

    result = run_crew(request, deps)
    response: CrewResponse = await result if inspect.isawaitable(result) else result
    return response


async def real_guard(ctx: ChatContext, request: CrewRequest, response: CrewResponse) -> GuardOutcome:
    """`graphs.guarding.guard_response`: Guardrails validators on the crew's response, one
    re-ask of the crew, else the safe reply (Guardrails is imported here, on the first check)."""
    # imported by name: graphs.guarding imports graphs.nodes, which imports this module (a static
    # import here would make an import cycle, which also defeats mypy's inference in graphs.graph)
    guarding: Any = importlib.import_module("graphs.guarding")
    outcome: GuardOutcome = await guarding.guard_response(ctx, request, response)
    return outcome


def real_execute_action(ctx: ChatContext, action: ProposedAction, meta: ActionMeta) -> dict[str, Any]:
    """`tools.actions.execute` in one transaction (the change and its Event commit together)."""
    from crm.db import session_scope
    from tools.actions import execute

    with session_scope(ctx.sync_engine()) as session:
        return execute(session, action, meta.actor, thread_id=meta.thread_id, embedder=ctx.embedder)


def real_record_event(ctx: ChatContext, kind: str, payload: dict[str, Any], meta: ActionMeta) -> None:
    """Append an Event (`crm.repository.append_event`) with the decision's actor and thread."""
    from crm.db import session_scope
    from crm.repository import append_event
    from crm.schemas import EventCreate

    with session_scope(ctx.sync_engine()) as session:
        append_event(
            session,
            EventCreate(
                kind=kind,
                actor=meta.actor,
                thread_id=meta.thread_id,
                account_id=payload.get("account_id") if isinstance(payload.get("account_id"), int) else None,
                deal_id=payload.get("deal_id") if isinstance(payload.get("deal_id"), int) else None,
                payload=payload,
            ),
        )


def default_llm_config(settings: Settings) -> LLMConfig:
    """LLM config from settings alone (no running stack known): the configured OpenAI-compatible
    endpoint, else the embedded llama.cpp server on `settings.llm_port`."""
    from embedded.llm import EMBEDDED_API_KEY

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else EMBEDDED_API_KEY
    base = settings.openai_base_url or (
        "https://api.openai.com/v1" if settings.openai_api_key else f"http://127.0.0.1:{settings.llm_port}/v1"
    )
    cfg = LLMConfig(
        base_url=base,
        api_key=key,
        model=settings.llm_model,
        timeout_s=settings.llm_timeout_s,
        max_tokens=settings.llm_max_tokens,
    )
    if not settings.llm_is_embedded and hasattr(cfg, "dialect"):
        # an external endpoint speaks the standard OpenAI structured-output form
        cfg = replace(cfg, dialect="openai")  # type: ignore[call-arg]
    return cfg


# --------------------------------------------------------------------------------------------
# the context
# --------------------------------------------------------------------------------------------


@dataclass
class ChatContext:
    """Run-scoped dependencies of the chat graph (LangGraph `context_schema`).

    - `engine` / `async_engine`: SQLAlchemy engines on the CRM database (built from settings on
      first use when None).
    - `llm`: endpoint, model, timeout (s) and max_tokens of every LLM call of the turn.
    - `embedder`: `crm.embeddings.Embedder` for memory search (built from settings when None).
    - callables: see the module docstring; `guard` None means pass-through (tests of the
      graph's plumbing only: the app always guards).
    - `intent_router`: the router `real_classify` uses (built on first use when None).
    - `crew_deps`: the object handed to `run_crew` as `deps` (None: built by
      `crews.registry` from this context on first use, see :meth:`crew_deps_for`).
    - `crew_attempts`: tries of a crew after a *transient* failure (connection refused, HTTP
      5xx), 1 = no retry; `crew_timeout_s`: wall-clock cap of one crew run (None: 3 x the LLM
      timeout, because a crew makes up to three LLM calls).
    - `history_turns`: earlier messages handed to classifier and crews (prompts stay short).
    - `stream_chunk_chars`: approximate size of the token frames the reply is streamed in.
    """

    engine: Engine | None = None
    async_engine: AsyncEngine | None = None
    llm: LLMConfig | None = None
    embedder: Any = None
    settings: Settings | None = None
    resolve: ResolveFn = real_resolve
    classify: ClassifyFn = real_classify
    run_crew: RunCrewFn = real_run_crew
    guard: GuardFn | None = real_guard
    execute_action: ExecuteFn = real_execute_action
    record_event: EventFn = real_record_event
    crew_deps: Any = None
    intent_router: Any = None
    crew_attempts: int = 2
    crew_timeout_s: float | None = None
    history_turns: int = 6
    stream_chunk_chars: int = 16

    def get_settings(self) -> Settings:
        """The settings of this context (process settings when none were given)."""
        if self.settings is None:
            from config.settings import get_settings

            self.settings = get_settings()
        return self.settings

    def llm_config(self) -> LLMConfig:
        """The LLM config (derived from settings when none was given)."""
        if self.llm is None:
            self.llm = default_llm_config(self.get_settings())
        return self.llm

    def sync_engine(self) -> Engine:
        """The sync engine (built from `DATABASE_URL` when none was given; raises RuntimeError
        when neither exists)."""
        if self.engine is None:
            url = self.get_settings().database_url
            if url is None:
                raise RuntimeError("no database: pass ChatContext(engine=...) or set DATABASE_URL")
            from crm.db import make_engine

            self.engine = make_engine(url)
        return self.engine

    def get_embedder(self) -> Any:
        """The embedder (built from settings on first use)."""
        if self.embedder is None:
            from crm.embeddings import get_embedder

            self.embedder = get_embedder(self.get_settings())
        return self.embedder

    def get_intent_router(self) -> Any:
        """The intent router (`graphs.intent.IntentRouter` on this context's embedder and LLM,
        with a one-word reply cap), built on first use and kept."""
        if self.intent_router is None:
            from graphs.intent import IntentRouter
            from graphs.llm import chat_model

            cfg = self.llm_config()
            self.intent_router = IntentRouter(
                self.get_embedder(),
                chat_model(cfg.with_limits(max_tokens=16)),
                dialect=getattr(cfg, "dialect", "llama_cpp"),
                llm_timeout_s=min(10.0, cfg.timeout_s),
            )
        return self.intent_router

    def warm_up(self) -> None:
        """Load what the first turn would otherwise wait for: the guards (Guardrails, validators,
        the CRM's name index) when the real guard is in use, the router's example vectors when
        the real router is. Blocking (run it in a thread)."""
        if self.guard is real_guard:
            try:
                importlib.import_module("graphs.guarding").warm_up(self)
            except Exception as exc:  # the first turn will try again and report a real failure
                log.warning("guard warm-up failed: %r", exc)
        if self.classify is real_classify:
            self.get_intent_router().warm()

    def crew_deps_for(self) -> Any:
        """The `deps` argument of `run_crew` (built once by `crews.registry.make_deps(ctx)` when
        not injected)."""
        if self.crew_deps is None:
            from crews.registry import make_deps  # type: ignore[attr-defined]

            self.crew_deps = make_deps(self)
        return self.crew_deps

    def crew_deadline_s(self) -> float:
        """Wall-clock cap of one crew run, in seconds."""
        return self.crew_timeout_s if self.crew_timeout_s is not None else 3 * self.llm_config().timeout_s


@cache
def default_context() -> ChatContext:
    """The context used when a run passes none (e.g. `langgraph dev`): everything from settings."""
    return ChatContext()
