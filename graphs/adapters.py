"""The real CRM-side parts of a :class:`graphs.context.ChatContext`: the entity resolver, the
action log and the guard, each bound to the CRM database at construction. Built by the
composition root (`app.services.context`); every method is blocking (one short transaction) and
is run in a worker thread by the graph's nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from contracts import ActionMeta, CrewRequest, CrewResponse, Entities, GuardOutcome, ProposedAction
from crm.db import read_engine, read_scope, session_scope
from crm.repository import append_event
from crm.schemas import EventCreate
from graphs.entities import resolve_entities
from graphs.guarding import check_with, output_models
from tools.actions import execute
from tools.guard_facts import gather
from tools.names import name_index

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from crm.embeddings import Embedder


class CrmResolver:
    """`graphs.entities.resolve_entities` (the CRM's cached name index) over `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.reads = read_engine(engine)

    def resolve(self, message: str, previous: Entities) -> Entities:
        """The records and period `message` names; `previous` is kept for a follow-up (see
        `graphs.entities.resolve_entities`). Raises on database errors."""
        with read_scope(self.reads) as session:
            resolved: Entities = resolve_entities(session, message, previous=previous)
            return resolved


class CrmActions:
    """Approved actions (`tools.actions.execute`) and Events (`crm.repository.append_event`) on
    `engine`; `embedder` indexes the text an action writes (emails, notes) for memory search
    (None: not indexed)."""

    def __init__(self, engine: Engine, embedder: Embedder | None = None) -> None:
        self.engine = engine
        self.embedder = embedder

    def execute(self, action: ProposedAction, meta: ActionMeta) -> dict[str, Any]:
        """Apply `action` and write its Event in one transaction (both or neither); what was
        done, for the rep. Raises `crm.errors.DomainError` when the CRM refuses it."""
        with session_scope(self.engine) as session:
            return execute(
                session,
                action,
                meta.actor,
                thread_id=meta.thread_id,
                embedder=self.embedder,
                idempotency_key=meta.idempotency_key,
            )

    def record(self, kind: str, payload: dict[str, Any], meta: ActionMeta) -> None:
        """Append an Event of `kind` with the decision's actor and thread; int `account_id` /
        `deal_id` of `payload` become the Event's foreign keys."""
        with session_scope(self.engine) as session:
            append_event(
                session,
                EventCreate(
                    kind=kind,
                    actor=meta.actor,
                    thread_id=meta.thread_id,
                    account_id=_int_key(payload, "account_id"),
                    deal_id=_int_key(payload, "deal_id"),
                    payload=payload,
                ),
            )


class CrmGuard:
    """The guard of the app (`graphs.context.ReplyGuard`): the facts of each response read from
    the CRM on `engine`, then :func:`check_with`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = read_engine(engine)

    def check(self, request: CrewRequest, response: CrewResponse, attempt: int) -> GuardOutcome:
        """The guards' decision on `response` (blocking: the CRM facts read in autocommit, see
        `crm.db.read_scope`, then the validators). Raises when the facts cannot be read or the
        checks cannot run."""
        with read_scope(self.reads) as session:
            facts = gather(session, request, response)
        return check_with(request, response, facts, attempt)

    def warm(self) -> None:
        """Load Guardrails, build the validators and each output model's `Guard.for_pydantic`,
        and the CRM's name index, so the first turn does not wait for them (~3-4 s). Blocking."""
        from guards import warm_up

        warm_up(output_models())
        with session_scope(self.engine) as session:
            name_index(session)


def _int_key(payload: dict[str, Any], key: str) -> int | None:
    value = payload.get(key)
    return value if isinstance(value, int) else None
