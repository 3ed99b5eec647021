"""`flowstate users ...` against the test database, and the first admin of `flowstate serve`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.commands import serve, users
from config.settings import get_settings
from crm import users as crm_users
from crm.db import session_scope
from crm.models import SalesRep


@pytest.fixture
def cli(clean_db: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    with session_scope(clean_db) as s:
        s.add(SalesRep(name="Ann Alpha", manager="Mia Lead"))
    app = typer.Typer()
    users.register(app)
    yield app
    get_settings.cache_clear()


def test_add_list_token_disable(cli: typer.Typer, clean_db: Engine) -> None:
    runner = CliRunner()
    added = runner.invoke(cli, ["users", "add", "ann", "--role", "rep", "--rep", "Ann Alpha"])
    assert added.exit_code == 0, added.output
    assert "password (shown once)" in added.stdout
    listed = runner.invoke(cli, ["users", "list"])
    assert "ann" in listed.stdout and "Ann Alpha" in listed.stdout
    token = runner.invoke(cli, ["users", "token", "ann"])
    assert token.exit_code == 0, token.output
    secret = token.stdout.strip().splitlines()[-1]
    with session_scope(clean_db) as s:
        caller = crm_users.resolve(s, secret, ("token",))
        assert caller is not None and caller.rep_name == "Ann Alpha"
    assert runner.invoke(cli, ["users", "disable", "ann"]).exit_code == 0
    with session_scope(clean_db) as s:
        assert crm_users.resolve(s, secret, ("token",)) is None


def test_a_rep_without_their_sales_rep_is_refused(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["users", "add", "zed", "--role", "rep", "--rep", "Nobody"])
    assert result.exit_code == 2 and "no sales rep" in result.stdout


def test_first_admin_on_loopback_gets_a_sign_in_link(clean_db: Engine, database_url: str) -> None:
    line = serve._first_admin(database_url, "127.0.0.1", "http://127.0.0.1:8000")
    assert "http://127.0.0.1:8000/login/once?key=" in line
    with session_scope(clean_db) as s:
        assert [u.username for u in crm_users.list_users(s)] == ["admin"]
    # a second start creates nobody and prints no new link
    assert "login/once" not in serve._first_admin(database_url, "127.0.0.1", "http://127.0.0.1:8000")


def test_no_users_on_a_public_address_is_refused(clean_db: Engine, database_url: str) -> None:
    with pytest.raises(serve.NoUsers, match="no users"):
        serve._first_admin(database_url, "0.0.0.0", "http://0.0.0.0:8000")
    with session_scope(clean_db) as s:
        assert crm_users.count_users(s) == 0
