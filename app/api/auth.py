"""Who is calling: the `Caller` of a request, from its credential, never from its body.

Credentials, in the order they are read:
- `Authorization: Bearer <token>`: a user's API token (`flowstate users token NAME`), or the
  value of `FLOWSTATE_API_TOKEN`, which stands for a built-in admin (scripts, CI, old clients);
- the `flowstate_session` cookie of a web sign-in (`POST /login`), for the workspace page. A
  cookie-authenticated write must come from an allowed origin (the app's own, or
  `FLOWSTATE_ALLOWED_ORIGINS`): the CSRF check a cookie needs and a bearer token does not;
- on the WebSocket only, `?token=<token>` (a browser cannot set headers on a WebSocket; the
  workspace page itself uses its cookie). Access logs never show it (`app.api.redact`).

No credential, or one that is unknown, revoked, expired or of a disabled user: 401. There is no
open mode: an unset or empty `FLOWSTATE_API_TOKEN` only means there is no built-in admin token.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.requests import HTTPConnection
from fastapi.responses import Response
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from config.settings import get_settings
from contracts.identity import Caller
from crm import users
from crm.db import async_session_scope

SESSION_COOKIE = "flowstate_session"

#: The built-in admin that `FLOWSTATE_API_TOKEN` stands for.
TOKEN_ADMIN = Caller(username="admin-token", display_name="API token", role="admin")

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: The schemes of /api in the OpenAPI schema (the check itself is `current_caller`).
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="a user's API token (`flowstate users token NAME`) or FLOWSTATE_API_TOKEN",
)
cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, scheme_name="session", description="the web sign-in's cookie"
)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def origin_of(conn: HTTPConnection) -> str:
    """The app's own origin as the client reached it (`scheme://host[:port]`)."""
    scheme = "https" if conn.url.scheme in ("https", "wss") else "http"
    return f"{scheme}://{conn.headers.get('host', conn.url.netloc)}"


def origin_allowed(conn: HTTPConnection, origin: str) -> bool:
    """True when `origin` is the app's own or listed in `FLOWSTATE_ALLOWED_ORIGINS`."""
    origin = origin.rstrip("/")
    return origin == origin_of(conn) or origin in get_settings().allowed_origins


async def _resolve(
    conn: HTTPConnection, secret: str, kinds: tuple[users.CredentialKind, ...]
) -> Caller | None:
    async with async_session_scope(conn.app.state.engine) as session:
        return await session.run_sync(lambda s: users.resolve(s, secret, kinds))


async def current_caller(conn: HTTPConnection) -> Caller:
    """The request's caller (cached on the connection: one lookup per request). Raises 401 with
    no or a wrong credential; 403 for a cookie-authenticated write from a foreign origin."""
    cached: Caller | None = getattr(conn.state, "caller", None)
    if cached is not None:
        return cached
    caller: Caller | None = None
    header = conn.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not bearer and conn.scope["type"] == "websocket":
        bearer = conn.query_params.get("token", "")
    if bearer:
        builtin = conn.app.state.api_token
        if builtin is not None and secrets.compare_digest(bearer.encode(), builtin.encode()):
            caller = TOKEN_ADMIN
        else:
            caller = await _resolve(conn, bearer, ("token",))
        if caller is None:
            raise _unauthorized("unknown, revoked or expired API token")
    else:
        cookie = conn.cookies.get(SESSION_COOKIE, "")
        if not cookie:
            raise _unauthorized("sign in, or send `Authorization: Bearer <API token>`")
        caller = await _resolve(conn, cookie, ("session",))
        if caller is None:
            raise _unauthorized("the session has ended: sign in again")
        method = conn.scope.get("method", "GET")
        if conn.scope["type"] == "http" and method not in _SAFE_METHODS:
            origin = conn.headers.get("origin") or ""
            if not origin or not origin_allowed(conn, origin):
                raise HTTPException(status_code=403, detail="cross-origin write refused (Origin)")
    conn.state.caller = caller
    return caller


async def caller_for_openapi(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    _cookie: Annotated[str | None, Security(cookie_scheme)],
) -> Caller:
    """`current_caller` for HTTP routes, declaring both schemes in the OpenAPI schema."""
    return await current_caller(request)


#: The caller of an HTTP route (declared on the /api routers; a route that needs the caller
#: takes this parameter and FastAPI resolves it once).
CallerDep = Annotated[Caller, Depends(caller_for_openapi)]


def set_session_cookie(response: Response, request: Request, secret: str) -> None:
    """Put a web session's secret in its cookie: HttpOnly, SameSite=Lax, Secure behind HTTPS
    (`FLOWSTATE_SECURE_COOKIES`), for `users.SESSION_TTL`."""
    mode = get_settings().secure_cookies
    secure = mode == "always" or (mode == "auto" and request.url.scheme == "https")
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(users.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    """Remove the session cookie (sign out)."""
    response.delete_cookie(SESSION_COOKIE, path="/")
