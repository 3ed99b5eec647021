"""`/api/events`: the append-only log of interactions and system events.

Scope (`crm.access`): the caller reads the events of the deals they read, of the accounts they
read (events on no deal), and their own. A client logs only interactions: the kinds of
`config/access.yaml` `client_event_kinds` (a call, a meeting, ...); every other kind (a stage
change, an approval, ...) is Flowstate's own and a 422 naming `kind`. The actor is always the
caller, and an event on a deal needs the caller to act for its rep (403 naming `deal_id`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from app.api.auth import CallerDep
from app.api.deps import Limit, Offset, QueryId, QueryText, SessionDep
from app.api.responses import errors
from config.files import load_access
from contracts.fields import Instant, Text
from crm import access, repository
from crm.errors import Invalid
from crm.schemas import EventCreate, EventOut, Page

router = APIRouter(prefix="/events", tags=["events"], responses=errors(422, 503))


@router.get("", response_model=Page[EventOut])
async def list_events(
    session: SessionDep,
    caller: CallerDep,
    kind: Annotated[Text | None, Query(description='exact kind, or a prefix ending in "*"')] = None,
    account_id: QueryId = None,
    deal_id: QueryId = None,
    thread_id: QueryText = None,
    actor: QueryText = None,
    since: Annotated[
        Instant | None, Query(description="occurred at or after (ISO time, with offset)")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[EventOut]:
    """Events the caller reads, newest first."""
    scope = access.events_condition(caller)
    return await session.run_sync(
        lambda s: repository.list_events(
            s,
            kind=kind,
            account_id=account_id,
            deal_id=deal_id,
            thread_id=thread_id,
            actor=actor,
            since=since,
            limit=limit,
            offset=offset,
            scope=scope,
        )
    )


@router.post(
    "", response_model=EventOut, status_code=status.HTTP_201_CREATED, responses=errors(400, 403, 409)
)
async def append_event(session: SessionDep, caller: CallerDep, body: EventCreate) -> EventOut:
    """Log an interaction (a kind of `client_event_kinds`, else 422 naming `kind`) by the caller;
    409 for an unknown (or unreadable) account/deal id, 403 for a deal of a rep the caller does
    not act for."""
    kinds = load_access().client_event_kinds
    if body.kind not in kinds:
        raise Invalid("kind", f"clients log only {', '.join(kinds)}; {body.kind!r} is Flowstate's own")

    def _append(s: Session) -> EventOut:
        if body.deal_id is not None:
            access.check_deal_ref(s, caller, body.deal_id)
        if body.account_id is not None:
            access.check_account_ref(s, caller, body.account_id)
        return repository.append_event(s, body.model_copy(update={"actor": caller.actor}))

    return await session.run_sync(_append)
