"""The composition root of the chat engine: the one place its parts are built and wired into a
:class:`graphs.context.ChatContext` (a frozen record of ready objects, shared by every turn).

    ctx = build_context(settings, endpoints)          # the app, `flowstate chat`
    try: ... finally: ctx.engine.dispose()            # the caller owns the engine

    ctx = replace(real_context(engine, llm, embedder), router=FakeRouter())   # tests

The parts: the CRM entity resolver, the intent router (local embedder + the configured LLM, a
one-word reply cap), the crews (`crews.registry.run_crew` with one `CrewDeps`), the action log
and the guard on the CRM database. Building them loads nothing heavy: the router embeds its
examples and the guard loads Guardrails on first use, or in :func:`warm_up`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from crews.registry import CrewDeps, run_crew
from graphs.adapters import CrmActions, CrmGuard, CrmResolver
from graphs.context import ChatContext, Warmable
from graphs.intent import IntentRouter
from llm import LLMConfig, chat_model

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from config.settings import Settings
    from crm.embeddings import Embedder
    from embedded.stack import Endpoints

log = logging.getLogger(__name__)

#: Reply cap of the router's LLM call (its answer is `{"intent": "<one word>"}`).
ROUTER_MAX_TOKENS = 16
#: The router's own deadline for its LLM call, seconds (past it the neighbours decide).
ROUTER_TIMEOUT_S = 10.0


def intent_router(
    embedder: Embedder, llm: LLMConfig | None, *, llm_timeout_s: float | None = None
) -> IntentRouter:
    """The chat's intent router: neighbours over `embedder`, then `llm` with a one-word reply
    cap when they are unsure (None: neighbours only). `llm_timeout_s`: the router's deadline for
    its LLM call (default: `ROUTER_TIMEOUT_S`, or the LLM's own timeout when shorter). The
    router of `flowstate eval intents` is built here too, so it measures the chat's."""
    if llm is None:
        return IntentRouter(embedder, None)
    return IntentRouter(
        embedder,
        chat_model(llm.with_limits(max_tokens=ROUTER_MAX_TOKENS)),
        dialect=llm.dialect,
        llm_timeout_s=llm_timeout_s if llm_timeout_s is not None else min(ROUTER_TIMEOUT_S, llm.timeout_s),
    )


def real_context(
    engine: Engine, llm: LLMConfig, embedder: Embedder, *, today: dt.date | None = None
) -> ChatContext:
    """The app's parts on a ready `engine` (sync, CRM database), `llm` and `embedder` (memory
    search and the router's neighbours). Builds no connection. The action log gets the same
    embedder, so what an action writes (an email, a note) is indexed for memory search.
    `today`: the date requests' relative dates count from (None: the clock's)."""
    return ChatContext(
        engine=engine,
        llm=llm,
        crew_deps=CrewDeps(engine=engine, llm=llm, embedder=embedder, today=today),
        resolver=CrmResolver(engine),
        router=intent_router(embedder, llm),
        crews=run_crew,
        actions=CrmActions(engine, embedder),
        guard=CrmGuard(engine),
    )


def build_context(settings: Settings, endpoints: Endpoints | None = None) -> ChatContext:
    """The app's context for a running stack (`endpoints`: its database and LLM) or, without
    one, for `settings` (DATABASE_URL and the configured or embedded LLM). The caller owns
    `ctx.engine` (dispose it on shutdown). Raises RuntimeError when there is no database."""
    from crm.db import make_engine
    from crm.embeddings import get_embedder

    url = endpoints.database_url if endpoints is not None else settings.database_url
    if url is None:
        raise RuntimeError("no database: start the stack or set DATABASE_URL")
    if endpoints is not None and endpoints.openai_base_url:
        llm = LLMConfig.from_endpoints(endpoints, settings)
    else:
        llm = LLMConfig.from_settings(settings)
    return real_context(make_engine(url), llm, get_embedder(settings), today=settings.today)


def warm_up(ctx: ChatContext) -> None:
    """Load what the first turn would otherwise wait for: the guard's Guardrails validators and
    the CRM's name index, the router's example vectors (the parts that can: `Warmable`).
    Blocking (run it in a thread); a failure is logged (the first turn tries again and reports
    a real failure)."""
    for part in (ctx.guard, ctx.router):
        if isinstance(part, Warmable):
            try:
                part.warm()
            except Exception as exc:
                log.warning("warm-up of %s failed: %r", type(part).__name__, exc)
