"""Alembic environment: migrations run on a sync psycopg engine.

The URL comes from `config.attributes["url"]` when Flowstate calls Alembic (`crm.migrate`), else
from `DATABASE_URL`, so `alembic upgrade head` also works by hand against a Supabase project.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import pool

from crm.db import make_engine
from crm.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set DATABASE_URL or run `flowstate migrate`")
    return str(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
