"""names version: a counter the CRM's name-bearing tables bump on every write

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 17:55:00

The cached name index (tools.names) used to check for changes with one query that counted and
scanned six tables on every chat turn (about 4 ms on the Maven CRM, twice per turn). Statement
triggers keep one row current instead, and the check is a primary-key read. Statement-level (not
row-level) so a bulk import bumps the counter once per statement.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables whose rows name things the chat resolves (and, for deals, the reference date).
TABLES = ("accounts", "contacts", "sales_reps", "products", "deals", "pipeline_stages")


def upgrade() -> None:
    op.execute("CREATE TABLE crm_names_version (id smallint PRIMARY KEY, version bigint NOT NULL)")
    op.execute("INSERT INTO crm_names_version (id, version) VALUES (1, 0)")
    op.execute(
        """
        CREATE FUNCTION crm_bump_names_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE crm_names_version SET version = version + 1 WHERE id = 1;
            RETURN NULL;
        END $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_names_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION crm_bump_names_version()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_names_version ON {table}")
    op.execute("DROP FUNCTION IF EXISTS crm_bump_names_version()")
    op.execute("DROP TABLE IF EXISTS crm_names_version")
