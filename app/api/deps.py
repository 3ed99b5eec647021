"""FastAPI dependencies and parameter types shared by the route modules.

Path and query parameters use the field types of `contracts.fields` (`RecordId`, `Text`, ISO
dates and offset date-times), so their limits are in the OpenAPI schema like the bodies' are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.fields import MAX_ID, IsoDate, RecordId, Text
from crm.db import async_session_scope
from crm.filters import DealFilter, FilterStatus
from tools.reminders import ReminderChange


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One database transaction per request, on the app's async engine (`app.state.engine`):
    committed when the route returns, rolled back when it raises (a domain error included)."""
    async with async_session_scope(request.app.state.engine) as session:
        yield session


#: The request's session. scope="function": the transaction commits *before* the response is sent,
#: so a client that reads right after a 201 sees its write, and a failed commit is a 500, not a lie.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def _ref(value: str | None) -> int | str | None:
    """A query value naming a record: ASCII digits are an id, anything else a name."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    return int(v) if v.isascii() and v.isdigit() else v


def deal_filter(
    account: Annotated[Text | None, Query(description="account id or name")] = None,
    rep: Annotated[Text | None, Query(description="sales rep id or name")] = None,
    product: Annotated[Text | None, Query(description="product id or name")] = None,
    manager: Annotated[Text | None, Query(description="the reps' manager")] = None,
    office: Annotated[Text | None, Query(description="the reps' regional office")] = None,
    series: Annotated[Text | None, Query(description="product series")] = None,
    sector: Annotated[Text | None, Query(description="account sector")] = None,
    stage: Annotated[list[Text] | None, Query(description="stage key or name; repeat for several")] = None,
    status: Annotated[FilterStatus | None, Query()] = None,
    engaged_from: Annotated[IsoDate | None, Query(description="engage_date >= (inclusive)")] = None,
    engaged_to: Annotated[
        IsoDate | None, Query(description="engage_date <= (inclusive); not before engaged_from")
    ] = None,
    closed_from: Annotated[IsoDate | None, Query(description="close_date >= (inclusive)")] = None,
    closed_to: Annotated[
        IsoDate | None, Query(description="close_date <= (inclusive); not before closed_from")
    ] = None,
) -> DealFilter:
    """The `DealFilter` of a request's query string (names are matched case-insensitively). A name
    or value that matches nothing is a 409 naming the parameter; a range ending before it starts
    a 422."""
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
#: At most MAX_ID: PostgreSQL's OFFSET is a bigint, and no table is that long.
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="rows to skip")]
#: A record id in a path (`/accounts/{account_id}`).
PathId = Annotated[RecordId, Path(description="the record's id")]
#: A record id in a query string (`?account_id=`): only rows of that record.
QueryId = Annotated[RecordId | None, Query(description="only rows of this record")]
#: Free text in a query string.
QueryText = Annotated[Text | None, Query()]


# --- workflows: started and signalled after the request's commit -----------------------------


class AfterCommit:
    """Work on Temporal that must follow the request's commit (the records it reads must exist):
    queued on FastAPI's background tasks, which run after the session dependency has committed
    and the response is sent. Best effort: what fails here, the dispatch schedule makes up."""

    def __init__(self, request: Request, background: BackgroundTasks) -> None:
        self.workflows = request.app.state.workflows
        self.background = background

    def start(self, workflow_ids: list[str]) -> None:
        """Start the workflows these ids name, if they were asked for and are not running."""
        if self.workflows is not None and workflow_ids:
            self.background.add_task(self.workflows.start, workflow_ids)

    def reminder_changed(self, change: ReminderChange) -> None:
        """Tell a reminder's workflow that it was closed or moved, and its deal's onboarding that
        a task was closed."""
        if change.start:
            self.start(change.start)
        if self.workflows is None or change.signal is None or change.workflow_id is None:
            return
        self.background.add_task(
            self.workflows.reminder_changed,
            change.workflow_id,
            change.signal,
            status=change.status,
            due_at=change.due_at,
        )
        if change.signal == "close" and change.onboarding_workflow_id is not None:
            self.background.add_task(self.workflows.task_closed, change.onboarding_workflow_id)


AfterCommitDep = Annotated[AfterCommit, Depends(AfterCommit)]
