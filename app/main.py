"""The FastAPI application: `create_app(endpoints)` builds it for a running stack.

Kept light to import: FastAPI, SQLAlchemy and the CRM domain only; no CrewAI, Guardrails or LLM
clients (seconds each to import), which chat routes must import lazily.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from app import web
from app.api.auth import caller_for_openapi, current_caller
from app.api.body_limit import BodyLimit
from app.api.errors import register_error_handlers
from app.api.limits import Limiter, RestLimit
from app.api.redact import install_log_redaction
from app.api.responses import API_PREFIX, errors
from app.api.routes import (
    accounts,
    chat,
    contacts,
    deals,
    documents,
    events,
    health,
    inbox,
    metrics,
    outbox,
    pipeline,
    products,
    recommendations,
    reminders,
    reps,
    session,
)
from app.api.ws_limits import check_origin
from config.settings import get_settings
from contracts.fields import PATTERN_RULES
from crm.db import make_async_engine
from crm.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
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
    inbox,
    outbox,
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


def _unprocessable(issues: list[dict[str, Any]]) -> JSONResponse:
    """422 `ValidationErrorBody`: `detail` is FastAPI's list (clients and the OpenAPI schema expect
    it); `message` names the fields in one line for people and chat tools; `field` is the first."""
    for issue in issues:
        # a pattern of contracts.fields is a rule with a name: say it in words, not in regex
        rule = PATTERN_RULES.get(str((issue.get("ctx") or {}).get("pattern")))
        if issue.get("type") == "string_pattern_mismatch" and rule is not None:
            issue["msg"] = rule
    message = "; ".join(f"{_field_of(i['loc'])}: {i['msg']}" for i in issues)
    field = _field_of(issues[0]["loc"]) if issues else None
    return JSONResponse(
        status_code=422, content={"detail": jsonable_encoder(issues), "message": message, "field": field}
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _unprocessable([dict(e) for e in exc.errors()])


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    # Conflict before Invalid: an Inconsistent value is both, and answers 409 naming its field.
    if isinstance(exc, NotFound):
        return JSONResponse(status_code=404, content={"detail": str(exc)})
    if isinstance(exc, Forbidden):
        return JSONResponse(status_code=403, content={"detail": exc.reason, "field": exc.field})
    if isinstance(exc, Conflict):
        field = exc.field if isinstance(exc, Invalid) else None
        return JSONResponse(status_code=409, content={"detail": str(exc), "field": field})
    if isinstance(exc, Invalid):
        return _unprocessable([{"loc": [exc.field], "msg": exc.reason, "type": "value_error"}])
    return JSONResponse(status_code=400, content={"detail": str(exc)})


def _documented_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI schema lists for the path template that `path` fits, sorted."""
    methods: set[str] = set()
    for template, item in app.openapi().get("paths", {}).items():
        pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{[^/}]+\}", template))
        if re.fullmatch(pattern, path):
            methods.update(m.upper() for m in item if m in _HTTP_METHODS)
    return sorted(methods)


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an HTTPException, with a complete `Allow` header on a 405: Starlette
    lists the methods of the one route it tried, while each method of a path is a route of its own
    here; the header lists the path's methods as the OpenAPI schema documents them."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allowed = _documented_methods(request.app, request.url.path)
        if allowed:
            exc = StarletteHTTPException(
                exc.status_code, exc.detail, headers={**(exc.headers or {}), "Allow": ", ".join(allowed)}
            )
    return await http_exception_handler(request, exc)


def create_app(endpoints: Endpoints) -> FastAPI:
    """The Flowstate API for the services in `endpoints`.

    The lifespan opens an async engine on `endpoints.database_url` (`app.state.engine`) and disposes
    it on shutdown; `app.state.endpoints` keeps the endpoints for routes that need other services.
    Errors (bodies and statuses in `app.api.responses`): `NotFound` -> 404, `Forbidden` -> 403
    `{"detail", "field"}` (outside the caller's scope), `Conflict` and
    `Inconsistent` -> 409 `{"detail", "field"}`, `Invalid` and request validation -> 422
    `{"detail": [issues], "message", "field"}`; a 405 lists every method of the path in `Allow`.
    A body over `FLOWSTATE_MAX_BODY_BYTES` -> 413, JSON nested too deeply -> 400
    (`app.api.body_limit`); over a rate limit -> 429 with `Retry-After` (`app.api.limits`). CORS
    answers only for `FLOWSTATE_CORS_ORIGINS`; the access log never shows `token=` / `key=` values.
    With `FLOWSTATE_API_TOKEN` set, /api declares a bearer scheme and 401 in the OpenAPI schema.
    OpenAPI UI at /docs, schema at /openapi.json.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_async_engine(endpoints.database_url)
        app.state.engine = engine
        sync_engine = None
        try:
            if endpoints.temporal_address:
                from app.services.workflows import open_workflows
                from crm.db import make_engine

                sync_engine = make_engine(endpoints.database_url)
                app.state.workflows = await open_workflows(get_settings(), endpoints, sync_engine)
            # the chat engine (LangGraph + Redis checkpointer) loads at start-up, not at import
            from app.services.chat import chat_service

            if endpoints.redis_url is not None:
                from app.services.notifications import NotificationHub

                app.state.notifications = NotificationHub(endpoints.redis_url)
                app.state.notifications.start()
            async with chat_service(endpoints, workflows=app.state.workflows) as chat_engine:
                app.state.chat = chat_engine
                yield
        finally:
            if app.state.notifications is not None:
                await app.state.notifications.stop()
            await app.state.limiter.close()
            await engine.dispose()
            if sync_engine is not None:
                sync_engine.dispose()

    settings = get_settings()
    app = FastAPI(
        title="Flowstate",
        version=_version(),
        summary="Self-hostable AI sales assistant over your CRM: records, pipeline, chat.",
        lifespan=lifespan,
        docs_url="/docs",
    )
    # rate limits and the cap on concurrent chat turns (app.api.limits), shared through Redis
    app.state.limiter = Limiter(settings, endpoints.redis_url)
    # 413 for a body over FLOWSTATE_MAX_BODY_BYTES (documents take more), 400 for JSON nested so
    # deep that parsing it would end in a 500 (app.api.body_limit)
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, by_path={"/api/documents": documents.MAX_BODY_BYTES}
    )
    if settings.cors_origins:
        # closed unless configured: only the listed origins may call the API from a browser
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["Retry-After"],
        )
    install_log_redaction()  # no token or sign-in key in the access log (app.api.redact)
    app.state.endpoints = endpoints
    app.state.chat = None
    # `workflows.client.Workflows` when Temporal is configured and answers (routes start and
    # signal workflows through it after their commit), else None
    app.state.workflows = None
    # `app.services.notifications.NotificationHub` with Redis: `notification` frames on the chat
    # WebSockets of the person each one is for
    app.state.notifications = None
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    register_error_handlers(app)  # database down -> 503 (app.api.errors)
    app.include_router(health.router)
    app.include_router(metrics.router)  # GET /metrics (Prometheus), beside /health
    token = get_settings().api_token
    app.state.api_token = token.get_secret_value() if token is not None else None
    # Every /api route and the chat WebSocket need a credential (app.api.auth): there is no open
    # mode. The sign-in routes themselves are open.
    auth = [Depends(caller_for_openapi), RestLimit]
    for module in API_ROUTERS:
        app.include_router(
            module.router, prefix=API_PREFIX, dependencies=auth, responses=errors(401, 403, 413, 429)
        )
    app.include_router(session.api_router, prefix=API_PREFIX, dependencies=auth, responses=errors(429))
    app.include_router(session.router)
    # a foreign browser origin is refused before the credential is looked at (app.api.ws_limits)
    app.include_router(chat.ws_router, dependencies=[Depends(check_origin), Depends(current_caller)])
    web.install(app)  # the workspace pages and their /static assets
    return app
