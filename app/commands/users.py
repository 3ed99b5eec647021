"""`flowstate users add|list|token|link|passwd|disable|enable`: the people who sign in.

Runs against DATABASE_URL (or the embedded PostgreSQL, which it starts if it is not running).
Secrets (an API token, a sign-in link, a generated password) are printed once and never stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from contracts.identity import Role

console = Console()
users_cli = typer.Typer(
    help="Users who sign in (admin, manager, rep) and their tokens.", no_args_is_help=True
)


@contextmanager
def _session() -> Iterator[Any]:
    from config.settings import get_settings
    from crm.db import make_engine, session_scope
    from crm.migrate import upgrade
    from embedded.stack import running_stack

    with running_stack(get_settings(), need={"database"}) as endpoints:
        upgrade(endpoints.database_url)
        engine = make_engine(endpoints.database_url)
        try:
            with session_scope(engine) as session:
                yield session
        finally:
            engine.dispose()


def _run(work: Callable[[Any], Any]) -> Any:
    from crm.errors import DomainError

    try:
        with _session() as session:
            return work(session)
    except DomainError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None


def sign_in_url(base_url: str, secret: str) -> str:
    """The one-time sign-in link of `secret` on the app at `base_url`."""
    return f"{base_url.rstrip('/')}/login/once?key={secret}"


@users_cli.command("add")
def add(
    username: Annotated[str, typer.Argument(help="sign-in name (letters, digits, . _ - @)")],
    role: Annotated[str, typer.Option(help="admin | manager | rep")] = "rep",
    rep: Annotated[str | None, typer.Option(help="a rep's sales rep: id or name")] = None,
    manager: Annotated[
        str | None, typer.Option(help="a manager's name, as their reps' manager field has it")
    ] = None,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    password: Annotated[
        str | None, typer.Option(help="password (at least 10 characters); default: generated and printed")
    ] = None,
) -> None:
    """Add a user. A rep is linked to their sales rep, a manager to the name their team reports to."""
    from crm import users

    if role not in ("admin", "manager", "rep"):
        console.print("[red]--role must be admin, manager or rep[/]")
        raise typer.Exit(2)
    generated = password is None
    pw = password or secrets.token_urlsafe(12)
    user = _run(
        lambda s: users.add_user(
            s,
            username,
            role=cast("Role", role),
            display_name=name,
            rep=rep,
            manager_name=manager,
            password=pw,
        )
    )
    console.print(f"added {user.role} [bold]{user.username}[/] ({user.display_name}), id {user.id}")
    if generated:
        console.print(f"password (shown once): [bold]{pw}[/]")


@users_cli.command("list")
def list_() -> None:
    """Every user: role, linked rep or manager, and whether they are disabled."""
    from crm import users

    rows = _run(users.list_users)
    table = Table("id", "username", "name", "role", "rep id", "manager of", "disabled")
    for u in rows:
        table.add_row(
            str(u.id),
            u.username,
            u.display_name,
            u.role,
            str(u.rep_id or ""),
            u.manager_name or "",
            str(u.disabled),
        )
    console.print(table)


@users_cli.command("token")
def token(
    username: str, label: Annotated[str | None, typer.Option(help="what the token is for")] = None
) -> None:
    """Issue an API token for REST and WebSocket clients (`Authorization: Bearer <token>`)."""
    from crm import users

    issued = _run(lambda s: users.issue(s, username, "token", label=label))
    console.print(f"API token for {issued.user.username} (shown once):")
    print(issued.secret)


@users_cli.command("link")
def link(
    username: str,
    base_url: Annotated[str, typer.Option(help="where the app is reached")] = "http://127.0.0.1:8000",
) -> None:
    """A one-time sign-in link (valid 24 hours, consumed on use)."""
    from crm import users

    issued = _run(lambda s: users.issue(s, username, "login_link", label="cli"))
    console.print(f"one-time sign-in link for {issued.user.username}:")
    print(sign_in_url(base_url, issued.secret))


@users_cli.command("passwd")
def passwd(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a user's password."""
    from crm import users

    _run(lambda s: users.set_password(s, username, password))
    console.print(f"password of {username} changed")


@users_cli.command("disable")
def disable(username: str) -> None:
    """Disable a user: their sessions and tokens stop working at once."""
    from crm import users

    _run(lambda s: users.set_disabled(s, username, True))
    console.print(f"{username} is disabled; their sessions and tokens are revoked")


@users_cli.command("enable")
def enable(username: str) -> None:
    """Enable a disabled user again (they need a new session or token)."""
    from crm import users

    _run(lambda s: users.set_disabled(s, username, False))
    console.print(f"{username} is enabled")


def register(cli: typer.Typer) -> None:
    cli.add_typer(users_cli, name="users")
