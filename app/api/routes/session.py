"""Signing in and out of the web workspace, and who the caller is.

- `POST /login` (form: `username`, `password`, `next`?): a web session cookie, then 303 to `next`
  (a path of this app) or `/`; a wrong name or password 303s back to `/login?error=1` (the same
  answer for each, so the page cannot be used to find usernames).
- `GET /login/once?key=` : a one-time sign-in link (`flowstate users link NAME`, or the first
  admin's that `flowstate serve` prints): consumed on use, then like a sign-in.
- `POST /logout`: ends the session (the credential is revoked, the cookie removed), 303 to /login.
- `GET /api/me`: the caller (`contracts.identity.Caller`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse

from app.api.auth import SESSION_COOKIE, CallerDep, clear_session_cookie, set_session_cookie
from app.api.limits import LoginLimit
from app.api.responses import errors
from contracts.identity import Caller
from crm import users
from crm.db import async_session_scope

# browser form routes (HTML redirects), not part of the JSON API: kept out of the OpenAPI schema
router = APIRouter(tags=["session"], include_in_schema=False)
api_router = APIRouter(tags=["session"], responses=errors(401))


def _local_path(next_path: str | None) -> str:
    """`next` only when it is a path of this app (no scheme, no host): no open redirect."""
    if next_path and next_path.startswith("/") and not next_path.startswith("//") and "\\" not in next_path:
        return next_path
    return "/"


@router.post(
    "/login",
    status_code=303,
    response_class=RedirectResponse,
    dependencies=[LoginLimit],  # FLOWSTATE_LOGIN_RATE_LIMIT per client address: 429 beyond it
    responses=errors(429),
)
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str | None, Form(max_length=500)] = None,
) -> RedirectResponse:
    """Sign in with a username and password (an HTML form post)."""
    async with async_session_scope(request.app.state.engine) as session:
        user = await session.run_sync(lambda s: users.authenticate(s, username, password))
        issued = None
        if user is not None:
            issued = await session.run_sync(lambda s: users.issue(s, user.id, "session", label="web"))
    if issued is None:
        return RedirectResponse("/login?error=1", status_code=303)
    response = RedirectResponse(_local_path(next), status_code=303)
    set_session_cookie(response, request, issued.secret)
    return response


@router.get("/login/once", status_code=303, response_class=RedirectResponse)
async def login_once(request: Request, key: Annotated[str, Query()]) -> RedirectResponse:
    """Sign in with a one-time link; a used, expired or unknown link goes to the sign-in page."""
    async with async_session_scope(request.app.state.engine) as session:
        caller = await session.run_sync(lambda s: users.resolve(s, key, ("login_link",)))
        issued = None
        if caller is not None and caller.user_id is not None:
            user_id = caller.user_id
            issued = await session.run_sync(lambda s: users.issue(s, user_id, "session", label="link"))
    if issued is None:
        return RedirectResponse("/login?error=link", status_code=303)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, request, issued.secret)
    return response


@router.post("/logout", status_code=303, response_class=RedirectResponse)
async def logout(request: Request) -> RedirectResponse:
    """Sign out: the session's credential is revoked and its cookie removed."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        async with async_session_scope(request.app.state.engine) as session:
            await session.run_sync(lambda s: users.revoke(s, cookie))
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


@api_router.get("/me", response_model=Caller)
async def me(caller: CallerDep) -> Caller:
    """Who the credential stands for: role, linked rep or manager name, and scope."""
    return caller
