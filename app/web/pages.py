"""The workspace's HTML pages: one Jinja2 shell per page on a shared layout; the page's ES module
(app/web/static/js/) asks the API for the user (`GET /api/me`) and the records.

- `GET /login` (`?error=1`: wrong name or password; `?error=link`: a used or expired sign-in link;
  `?next=`: where to go after signing in);
- `GET /` the chat, `GET /pipeline` the deal board, `GET /inbox`, `GET /dashboard`,
  `GET /accounts/{account_id}` the account card.

A visitor without a session cookie is sent to `/login?next=<the page>` (303); a cookie that no
longer stands for a session is found out by the page's first API call (401), which sends it to
the same place. Pages carry a Content-Security-Policy that allows only this origin's scripts,
styles and connections (the chat WebSocket included).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.api.auth import SESSION_COOKIE

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
templates = Jinja2Templates(directory=WEB_DIR / "templates")

router = APIRouter(include_in_schema=False)

#: What `/login?error=` says.
LOGIN_ERRORS = {
    "1": "Wrong username or password.",
    "link": "That sign-in link was used already or has expired. Sign in with your password.",
}


@cache
def asset_version() -> str:
    """A short hash of the static files, appended to asset URLs so a new release is fetched."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def _security_headers(request: Request, response: Response) -> Response:
    host = request.headers.get("host", request.url.netloc)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' ws://{host} wss://{host}; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(request: Request, template: str, page: str, title: str, **context: Any) -> Response:
    """The page shell, or a redirect to the sign-in page for a visitor without a session."""
    if not request.cookies.get(SESSION_COOKIE):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    response = templates.TemplateResponse(
        request,
        template,
        {"page": page, "title": title, "version": asset_version(), **context},
    )
    return _security_headers(request, response)


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request,
    error: Annotated[str | None, Query(max_length=20)] = None,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The sign-in form (posts to `POST /login`)."""
    response = templates.TemplateResponse(
        request,
        "login.html",
        {
            "page": "login",
            "title": "Sign in",
            "version": asset_version(),
            "error": LOGIN_ERRORS.get(error or "") if error else None,
            "next": next or "/",
        },
    )
    return _security_headers(request, response)


@router.get("/", response_class=HTMLResponse)
async def chat_page(request: Request) -> Response:
    """The chat: conversations, the message box, streamed replies and approval cards."""
    return _page(request, "chat.html", "chat", "Chat")


@router.get("/pipeline", response_class=HTMLResponse)
async def pipeline_page(request: Request) -> Response:
    """The deal board: deals as cards in stage columns; moves go through approval."""
    return _page(request, "pipeline.html", "pipeline", "Pipeline")


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(request: Request) -> Response:
    """What waits for the user: reminders, drafts and actions to approve, alerts."""
    return _page(request, "inbox.html", "inbox", "Inbox")


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(request: Request) -> Response:
    """Win rate, revenue, pipeline by stage, forecast and stuck deals, per rep and per office."""
    return _page(request, "dashboard.html", "dashboard", "Dashboard")


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
async def account_page(request: Request, account_id: Annotated[int, PathParam(ge=1, le=2**53)]) -> Response:
    """The account card: profile, contacts, deals with stage history, timeline, reminders."""
    return _page(request, "account.html", "account", "Account", account_id=account_id)
