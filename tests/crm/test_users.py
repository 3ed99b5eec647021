"""Users and credentials on a real PostgreSQL: argon2 passwords, hashed secrets, scopes by role."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm import users
from crm.db import session_scope
from crm.errors import Conflict, Invalid
from crm.models import Credential, SalesRep, User


@pytest.fixture
def team(clean_db: Engine) -> Engine:
    """Two managers' teams: Mia leads Ann and Bob, Max leads Cy."""
    with session_scope(clean_db) as s:
        s.add_all(
            [
                SalesRep(name="Ann Alpha", manager="Mia Lead", regional_office="West"),
                SalesRep(name="Bob Beta", manager="Mia Lead", regional_office="West"),
                SalesRep(name="Cy Gamma", manager="Max Head", regional_office="East"),
            ]
        )
    return clean_db


def _rep_id(s: Session, name: str) -> int:
    rep_id = s.scalar(select(SalesRep.id).where(SalesRep.name == name))
    assert rep_id is not None
    return rep_id


def test_password_is_hashed_with_argon2_and_checked(team: Engine) -> None:
    with session_scope(team) as s:
        users.add_user(s, "Ann", role="rep", rep="Ann Alpha", password="correct horse")
    with session_scope(team) as s:
        stored = s.scalar(select(User.password_hash).where(User.username == "ann"))
        assert stored is not None and stored.startswith("$argon2id$") and "correct horse" not in stored
        assert users.authenticate(s, "ANN", "correct horse") is not None
        assert users.authenticate(s, "ann", "wrong password") is None
        assert users.authenticate(s, "nobody", "correct horse") is None


def test_short_password_and_taken_username_are_refused(team: Engine) -> None:
    with session_scope(team) as s:
        with pytest.raises(Invalid) as short:
            users.add_user(s, "ann", role="rep", rep="Ann Alpha", password="short")
        assert short.value.field == "password"
        users.add_user(s, "ann", role="rep", rep="Ann Alpha")
        with pytest.raises(Conflict):
            users.add_user(s, "Ann", role="admin")
        with pytest.raises(Invalid) as no_rep:
            users.add_user(s, "zed", role="rep", rep="No Such Rep")
        assert no_rep.value.field == "rep"


def test_secrets_are_stored_hashed_and_resolve_to_the_caller(team: Engine) -> None:
    with session_scope(team) as s:
        users.add_user(s, "ann", role="rep", rep="Ann Alpha")
        issued = users.issue(s, "ann", "token", label="cli")
    with session_scope(team) as s:
        stored = s.scalars(select(Credential.secret_sha256)).all()
        assert stored == [users.sha256(issued.secret)] and issued.secret not in stored
        caller = users.resolve(s, issued.secret, ("token",))
        assert caller is not None and caller.role == "rep" and caller.rep_name == "Ann Alpha"
        assert caller.read_rep_ids == caller.act_rep_ids == frozenset({_rep_id(s, "Ann Alpha")})
        # a token is not a session, and a guess is nothing
        assert users.resolve(s, issued.secret, ("session",)) is None
        assert users.resolve(s, issued.secret + "x", ("token",)) is None


def test_manager_scope_is_their_team_and_admin_scope_is_everyone(team: Engine) -> None:
    with session_scope(team) as s:
        mia = users.add_user(s, "mia", role="manager", manager_name="Mia Lead")
        root = users.add_user(s, "root", role="admin")
        caller = users.caller_of(s, mia)
        assert caller.act_rep_ids == frozenset({_rep_id(s, "Ann Alpha"), _rep_id(s, "Bob Beta")})
        assert caller.may_act_for_rep(_rep_id(s, "Bob Beta"))
        assert not caller.may_read_rep(_rep_id(s, "Cy Gamma"))
        admin = users.caller_of(s, root)
        assert admin.read_rep_ids is None and admin.may_act_for_rep(_rep_id(s, "Cy Gamma"))


def test_sign_in_link_is_single_use_and_sessions_expire(team: Engine) -> None:
    now = dt.datetime.now(dt.UTC)
    with session_scope(team) as s:
        users.add_user(s, "root", role="admin")
        link = users.issue(s, "root", "login_link")
        session = users.issue(s, "root", "session", now=now)
    with session_scope(team) as s:
        assert users.resolve(s, link.secret, ("login_link",)) is not None
    with session_scope(team) as s:
        assert users.resolve(s, link.secret, ("login_link",)) is None
        assert users.resolve(s, session.secret, ("session",), now=now) is not None
        later = now + users.SESSION_TTL + dt.timedelta(minutes=5)
        assert users.resolve(s, session.secret, ("session",), now=later) is None


def test_disabling_a_user_revokes_their_credentials(team: Engine) -> None:
    with session_scope(team) as s:
        users.add_user(s, "ann", role="rep", rep="Ann Alpha", password="correct horse")
        token = users.issue(s, "ann", "token")
        users.set_disabled(s, "ann")
    with session_scope(team) as s:
        assert users.resolve(s, token.secret, ("token",)) is None
        assert users.authenticate(s, "ann", "correct horse") is None
        with pytest.raises(Conflict):
            users.issue(s, "ann", "token")
