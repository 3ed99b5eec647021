"""FastAPI dependencies shared by the route modules."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.requests import HTTPConnection
from sqlalchemy.ext.asyncio import AsyncSession

from crm.db import async_session_scope
from crm.filters import DealFilter, FilterStatus


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One database transaction per request, on the app's async engine (`app.state.engine`):
    committed when the route returns, rolled back when it raises (a domain error included)."""
    async with async_session_scope(request.app.state.engine) as session:
        yield session


#: The request's session. scope="function": the transaction commits *before* the response is sent,
#: so a client that reads right after a 201 sees its write, and a failed commit is a 500, not a lie.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def require_token(conn: HTTPConnection) -> None:
    """Bearer-token auth for /api and /ws when `FLOWSTATE_API_TOKEN` is set (else open: the
    embedded default listens on 127.0.0.1 only). HTTP clients send `Authorization: Bearer <token>`;
    WebSocket clients, which browsers cannot give headers, may send `?token=<token>` instead.
    Raises HTTPException 401 (a WebSocket handshake is refused) on a missing or wrong token."""
    expected = conn.app.state.api_token
    if expected is None:
        return
    header = conn.headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else conn.query_params.get("token", "")
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong API token (FLOWSTATE_API_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _ref(value: str | None) -> int | str | None:
    """A query value naming a record: digits are an id, anything else a name."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    return int(v) if v.isdigit() else v


def deal_filter(
    account: Annotated[str | None, Query(description="account id or name")] = None,
    rep: Annotated[str | None, Query(description="sales rep id or name")] = None,
    product: Annotated[str | None, Query(description="product id or name")] = None,
    manager: Annotated[str | None, Query(description="the reps' manager")] = None,
    office: Annotated[str | None, Query(description="the reps' regional office")] = None,
    series: Annotated[str | None, Query(description="product series")] = None,
    sector: Annotated[str | None, Query(description="account sector")] = None,
    stage: Annotated[list[str] | None, Query(description="stage key or name; repeat for several")] = None,
    status: Annotated[FilterStatus | None, Query()] = None,
    engaged_from: Annotated[dt.date | None, Query(description="engage_date >= (inclusive)")] = None,
    engaged_to: Annotated[dt.date | None, Query(description="engage_date <= (inclusive)")] = None,
    closed_from: Annotated[dt.date | None, Query(description="close_date >= (inclusive)")] = None,
    closed_to: Annotated[dt.date | None, Query(description="close_date <= (inclusive)")] = None,
) -> DealFilter:
    """The `DealFilter` of a request's query string (names are matched case-insensitively)."""
    return DealFilter(
        account=_ref(account),
        rep=_ref(rep),
        product=_ref(product),
        manager=manager,
        office=office,
        series=series,
        sector=sector,
        stages=stage or None,
        status=status,
        engaged_from=engaged_from,
        engaged_to=engaged_to,
        closed_from=closed_from,
        closed_to=closed_to,
    )


DealFilterDep = Annotated[DealFilter, Depends(deal_filter)]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, description="rows to skip")]
