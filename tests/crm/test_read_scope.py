"""`crm.db.read_scope` against the real PostgreSQL: its reads run outside any transaction (no
BEGIN / COMMIT round trips), on the engine's own pool, and the pool's connections go back to
transactions afterwards."""

from __future__ import annotations

from typing import Any

from psycopg import pq
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from crm.db import read_engine, read_scope, session_scope
from crm.models import Account


def _status(session: Session) -> pq.TransactionStatus:
    """The server-side transaction status of the session's connection (psycopg's libpq view)."""
    raw: Any = session.connection().connection.dbapi_connection
    return pq.TransactionStatus(raw.pgconn.transaction_status)


def test_reads_run_outside_a_transaction_and_the_pool_is_left_transactional(clean_db: Engine) -> None:
    with read_scope(read_engine(clean_db)) as session:
        assert session.scalar(select(text("1"))) == 1
        assert session.scalars(select(Account.id)).all() == []
        assert _status(session) == pq.TransactionStatus.IDLE  # no BEGIN was sent
        bind = session.get_bind()
        assert isinstance(bind, Engine) and bind.pool is clean_db.pool  # the engine's own connections
    with session_scope(clean_db) as session:
        assert session.scalar(select(text("1"))) == 1
        assert _status(session) == pq.TransactionStatus.INTRANS  # a normal session still is one
        # SET LOCAL, which needs a transaction, holds in it
        session.execute(text("SET LOCAL hnsw.ef_search = 123"))
        assert session.scalar(text("SHOW hnsw.ef_search")) == "123"


def test_read_scope_sees_what_other_sessions_committed(clean_db: Engine) -> None:
    with read_scope(read_engine(clean_db)) as reader:
        assert reader.scalar(select(Account.id).where(Account.name == "Readco")) is None
        with session_scope(clean_db) as writer:
            writer.add(Account(name="Readco"))
        assert reader.scalar(select(Account.name).where(Account.name == "Readco")) == "Readco"
