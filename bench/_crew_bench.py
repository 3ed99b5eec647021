"""Shared set-up of the crew benchmarks: a database with the Maven CRM and an LLM endpoint.

- Database: `--database-url`, else `DATABASE_URL` (used as is: import the Maven export first),
  else an embedded PostgreSQL in a temporary directory with the Maven export imported (~30 s).
- LLM: `--base-url` / `--model` / `--api-key`, else the embedded llama.cpp server (started, or
  reused when one already serves on FLOWSTATE_LLM_PORT).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine

from llm import LLMConfig

MAVEN_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "maven-crm"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument(
        "--base-url", help="OpenAI-compatible API root (default: the embedded llama.cpp server)"
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--api-key", default="sk-no-key-required")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per LLM request")


@contextlib.contextmanager
def database(url: str | None) -> Iterator[Engine]:
    """A sync engine on `url`, or on a temporary embedded PostgreSQL with the Maven CRM."""
    from crm.db import make_engine

    if url is not None:
        engine = make_engine(url)
        yield engine
        engine.dispose()
        return
    from crm.importer import import_export
    from crm.migrate import upgrade
    from embedded.postgres import start_postgres

    with tempfile.TemporaryDirectory(prefix="flowstate-bench-") as tmp:
        os.chmod(tmp, 0o755)  # pgserver runs PostgreSQL as its own user
        server = start_postgres(Path(tmp))
        try:
            upgrade(server.url)
            engine = make_engine(server.url)
            import_export(engine, MAVEN_DIR)
            yield engine
            engine.dispose()
        finally:
            server.stop()


@contextlib.contextmanager
def llm_config(args: argparse.Namespace) -> Iterator[LLMConfig]:
    """The LLM endpoint of the benchmark (see the module docstring)."""
    from config.settings import get_settings

    settings = get_settings()
    model = args.model or settings.llm_model
    if args.base_url:
        yield LLMConfig(
            base_url=args.base_url,
            api_key=args.api_key,
            model=model,
            timeout_s=args.timeout,
            max_tokens=settings.llm_max_tokens,
            max_retries=0,
        )
        return
    from embedded.llm import EMBEDDED_API_KEY, start_llm

    server = start_llm(settings, settings.data_dir, show_progress=False)
    try:
        yield LLMConfig(
            base_url=server.base_url,
            api_key=EMBEDDED_API_KEY,
            model=settings.llm_model,
            timeout_s=args.timeout,
            max_tokens=settings.llm_max_tokens,
            max_retries=0,
        )
    finally:
        server.stop()
