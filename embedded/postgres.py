"""Embedded PostgreSQL 16 + pgvector from the `pgserver` wheel.

pgserver runs initdb once into `<data_dir>/postgres`, then starts the server on a unix socket with
trust auth (no TCP port, so it never collides with a system PostgreSQL). Run as root, it runs the
server as a `pgserver` system user. It stops the server when the last handle in this process is
cleaned up (`stop()` or interpreter exit).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    """A running embedded server. `url` is a libpq URL (`postgresql://postgres:@/postgres?host=…`)."""

    datadir: Path
    url: str
    _server: Any

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        self._server.cleanup()


def start_postgres(data_dir: Path, database: str = "flowstate") -> EmbeddedPostgres:
    """Start (or attach to) the embedded server under `data_dir/postgres` and make sure
    `database` exists with the `vector` extension.

    Takes about 3 s the first time (initdb), 0.2 s after. Raises RuntimeError with the server log's
    tail if the server does not start.
    """
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset on headless machines; harmless here.
        warnings.simplefilter("ignore")
        import pgserver
        import psycopg

    data_dir.mkdir(parents=True, exist_ok=True)
    datadir = data_dir / "postgres"
    try:
        server = pgserver.get_server(datadir, cleanup_mode="stop")  # type: ignore[attr-defined]
    except Exception as exc:  # pgserver raises CalledProcessError/TimeoutExpired/AssertionError
        log_file = datadir / "log"
        tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        raise RuntimeError(f"embedded PostgreSQL did not start in {datadir}: {exc}\n{tail}") from exc

    admin_url = server.get_uri("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    url = server.get_uri(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    log.info("embedded PostgreSQL at %s", datadir)
    return EmbeddedPostgres(datadir=datadir, url=url, _server=server)


def running_url(data_dir: Path, database: str = "flowstate") -> str | None:
    """URL of the embedded server for `data_dir` if one is already running (started by another
    process, e.g. `flowstate serve`), else None. Starts nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(data_dir / "postgres")
    except (OSError, ValueError, AssertionError):
        return None
    if info is None or not info.is_running():
        return None
    return str(info.get_uri(database=database))
