"""The FastAPI application: `create_app(endpoints)` builds it for a running stack.

Kept light to import: FastAPI, SQLAlchemy and the CRM domain only; no CrewAI, Guardrails or LLM
clients (seconds each to import), which chat routes must import lazily.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.api.deps import require_token
from app.api.errors import register_error_handlers
from app.api.routes import (
    accounts,
    chat,
    contacts,
    deals,
    documents,
    events,
    health,
    metrics,
    pipeline,
    products,
    recommendations,
    reminders,
    reps,
)
from config.settings import get_settings
from crm.db import make_async_engine
from crm.errors import Conflict, DomainError, Invalid, NotFound
from embedded.stack import Endpoints

#: Routers mounted under /api (each module's `router` carries its own sub-prefix and tags).
API_ROUTERS = (
    accounts,
    contacts,
    products,
    reps,
    deals,
    pipeline,
    reminders,
    recommendations,
    events,
    documents,
    chat,
)


def _version() -> str:
    try:
        return importlib.metadata.version("flowstate")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    """`("body", "value")` -> "value"; `("query", "limit")` -> "limit"; nested -> "items.0.name"."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    message = "; ".join(f"{_field_of(e['loc'])}: {e['msg']}" for e in errors)
    # `detail` stays FastAPI's list (clients and the OpenAPI schema expect it); `message` names the
    # fields in one line for people and chat tools.
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors), "message": message})


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, NotFound):
        return JSONResponse(status_code=404, content={"detail": str(exc)})
    if isinstance(exc, Conflict):
        return JSONResponse(status_code=409, content={"detail": str(exc)})
    if isinstance(exc, Invalid):
        return JSONResponse(status_code=422, content={"detail": str(exc), "field": exc.field})
    return JSONResponse(status_code=400, content={"detail": str(exc)})


def create_app(endpoints: Endpoints) -> FastAPI:
    """The Flowstate API for the services in `endpoints`.

    The lifespan opens an async engine on `endpoints.database_url` (`app.state.engine`) and disposes
    it on shutdown; `app.state.endpoints` keeps the endpoints for routes that need other services.
    Errors: `NotFound` -> 404, `Conflict` -> 409, `Invalid` -> 422, each `{"detail": message}`
    naming the entity or field; request validation -> FastAPI's 422 plus a one-line `message`.
    OpenAPI UI at /docs, schema at /openapi.json.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_async_engine(endpoints.database_url)
        app.state.engine = engine
        try:
            # the chat engine (LangGraph + Redis checkpointer) loads at start-up, not at import
            from app.services.chat import chat_service

            async with chat_service(endpoints) as chat_engine:
                app.state.chat = chat_engine
                yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Flowstate",
        version=_version(),
        summary="Self-hostable AI sales assistant over your CRM: records, pipeline, chat.",
        lifespan=lifespan,
        docs_url="/docs",
    )
    app.state.endpoints = endpoints
    app.state.chat = None
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DomainError, _domain_error)
    register_error_handlers(app)  # database down -> 503 (app.api.errors)
    app.include_router(health.router)
    app.include_router(metrics.router)  # GET /metrics (Prometheus), beside /health
    token = get_settings().api_token
    app.state.api_token = token.get_secret_value() if token is not None else None
    auth = [Depends(require_token)]
    for module in API_ROUTERS:
        app.include_router(module.router, prefix="/api", dependencies=auth)
    app.include_router(chat.ws_router, dependencies=auth)
    return app
