"""time-based work: inbox, outbox, executed actions, workflow runs; job_queue removed

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 20:10:00

Reminders, sequences, scheduled agents and the outbox run on Temporal. The CRM keeps what people
see and decide (`inbox_items`), what goes out (`outbox_messages`), the record that an approved
action ran (`executed_actions`, for exactly-once execution) and the workflows a write asked for
(`workflow_runs`, written in the same transaction, started after the commit). `job_queue` had no
reader and is dropped: email delivery is a Temporal activity now.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.add_column("sales_reps", sa.Column("time_zone", sa.String(64), server_default="UTC", nullable=False))
    op.add_column("reminders", sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "inbox_items",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("recipient", sa.String(120), nullable=False),
        sa.Column("rep_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), server_default="open", nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("action", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("reminder_id", sa.BigInteger(), nullable=True),
        sa.Column("deal_id", sa.BigInteger(), nullable=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("workflow_id", sa.String(200), nullable=True),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("decided_by", sa.String(120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('reminder','draft','action','alert','digest','report')", name="inbox_items_kind"
        ),
        sa.CheckConstraint(
            "status IN ('open','approved','rejected','done','snoozed','dismissed')", name="inbox_items_status"
        ),
        sa.ForeignKeyConstraint(["rep_id"], ["sales_reps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reminder_id"], ["reminders.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_inbox_items_recipient_status", "inbox_items", ["recipient", "status"])
    op.create_index("ix_inbox_items_rep_id", "inbox_items", ["rep_id"])
    op.create_index("ix_inbox_items_reminder_id", "inbox_items", ["reminder_id"])
    op.create_index("ix_inbox_items_deal_id", "inbox_items", ["deal_id"])

    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("idempotency_key", sa.String(240), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("to_addr", sa.String(254), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), server_default="queued", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("rep_id", sa.BigInteger(), nullable=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("deal_id", sa.BigInteger(), nullable=True),
        sa.Column("thread_id", sa.String(120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('queued','sent','failed')", name="outbox_messages_status"),
        sa.ForeignKeyConstraint(["rep_id"], ["sales_reps.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_outbox_messages_deal_id", "outbox_messages", ["deal_id"])

    op.create_table(
        "executed_actions",
        sa.Column("key", sa.String(240), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("executed_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )

    op.create_table(
        "workflow_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("deal_id", sa.BigInteger(), nullable=True),
        sa.Column("reminder_id", sa.BigInteger(), nullable=True),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint("kind IN ('reminder','email','sequence','onboarding')", name="workflow_runs_kind"),
        sa.CheckConstraint(
            "status IN ('pending','started','completed','cancelled','failed')", name="workflow_runs_status"
        ),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reminder_id"], ["reminders.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox_messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id"),
    )
    op.create_index("ix_workflow_runs_status", "workflow_runs", ["status"])
    op.create_index("ix_workflow_runs_deal_id", "workflow_runs", ["deal_id"])

    op.drop_index("ix_job_queue_ready", table_name="job_queue")
    op.drop_table("job_queue")


def downgrade() -> None:
    op.create_table(
        "job_queue",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("status", sa.String(20), server_default="queued", nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint("status IN ('queued','running','done','failed')", name="job_queue_status"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_job_queue_ready", "job_queue", ["status", "run_at"])
    op.drop_table("workflow_runs")
    op.drop_table("executed_actions")
    op.drop_table("outbox_messages")
    op.drop_table("inbox_items")
    op.drop_column("reminders", "fired_at")
    op.drop_column("sales_reps", "time_zone")
