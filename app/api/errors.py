"""HTTP answers for the failures of a service the API depends on, rather than a bare 500.

The CRM database: when PostgreSQL is down or restarting, the driver raises connection errors
(`psycopg.OperationalError`, wrapped by SQLAlchemy as `sqlalchemy.exc.OperationalError`, or
`InterfaceError` for a connection closed under it). Those are answered `503 Service Unavailable`
with a `Retry-After` header and a message that says what is down; the engine's pool pre-ping
replaces the dead connections, so requests succeed again as soon as the server is back, without
restarting the app. Other database errors (a bad value, a constraint) are
not outages (`DataError`, `IntegrityError`, ...) and are left to the other handlers.

    register_error_handlers(app)
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

log = logging.getLogger(__name__)

#: Seconds a client is told to wait before retrying (`Retry-After`): a restarting PostgreSQL
#: takes a few seconds.
RETRY_AFTER_S = 5
#: The message of the 503 answer.
DATABASE_DOWN = (
    "The CRM database is not reachable right now (PostgreSQL is down or restarting); try again shortly."
)


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 `{"detail": DATABASE_DOWN}` with `Retry-After` (for OperationalError and
    InterfaceError: the database could not be reached or the connection was lost)."""
    log.warning("database unreachable during %s %s: %s", request.method, request.url.path, _first_line(exc))
    return JSONResponse(
        status_code=503, content={"detail": DATABASE_DOWN}, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__


def register_error_handlers(app: FastAPI) -> None:
    """Install the handlers of this module on `app`."""
    app.add_exception_handler(OperationalError, database_unavailable)
    app.add_exception_handler(InterfaceError, database_unavailable)
