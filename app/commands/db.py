"""`flowstate migrate`: apply the schema migrations and sync the pipeline stages."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()


def migrate() -> None:
    """Apply Alembic migrations to DATABASE_URL (or the embedded PostgreSQL) and sync stages."""
    from config.settings import get_settings
    from crm.migrate import upgrade
    from embedded.stack import running_stack

    with running_stack(get_settings(), need={"database"}) as endpoints:
        upgrade(endpoints.database_url)
        console.print(f"[green]database is at the latest migration[/] ({endpoints.describe('database')})")


def register(cli: typer.Typer) -> None:
    cli.command("migrate")(migrate)
