"""Users and their credentials: passwords (argon2id, via argon2-cffi), API tokens, web sessions
and one-time sign-in links, and the `Caller` each resolves to.

A secret (token, session, link) is 32 random bytes (`secrets.token_urlsafe`), shown once; the
database keeps its SHA-256 only, so a leaked table grants nothing. Lookups hash the presented
secret and compare in the database: a SHA-256 of 256 random bits needs no slow hash (a password
does, and gets argon2id with the library's defaults, RFC 9106's second recommended setting).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from config.files import load_access
from contracts.identity import Caller, Role
from crm.errors import Conflict, Invalid, NotFound
from crm.models import Credential, SalesRep, User

_hasher = PasswordHasher()

#: How long a web session lasts without use, and a one-time sign-in link before it is used.
SESSION_TTL = dt.timedelta(days=14)
LOGIN_LINK_TTL = dt.timedelta(hours=24)
MIN_PASSWORD_CHARS = 10

CredentialKind = Literal["token", "session", "login_link"]


class UserOut(BaseModel):
    """A user as the CLI and the admin API show it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    rep_id: int | None
    manager_name: str | None
    disabled: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class Issued:
    """A new secret: `secret` is shown to the person once and never stored."""

    user: UserOut
    secret: str
    expires_at: dt.datetime | None


def sha256(secret: str) -> str:
    """Hex SHA-256 of a presented secret (the form credentials are stored and looked up in)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An argon2id hash of `password`. Raises Invalid("password") under MIN_PASSWORD_CHARS."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise Invalid("password", f"must be at least {MIN_PASSWORD_CHARS} characters")
    return _hasher.hash(password)


def _user(session: Session, username: str) -> User:
    row = session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    if row is None:
        raise NotFound("user", username)
    return row


def count_users(session: Session) -> int:
    """How many users exist (disabled ones included)."""
    return session.scalar(select(func.count()).select_from(User)) or 0


def add_user(
    session: Session,
    username: str,
    *,
    role: Role,
    display_name: str | None = None,
    rep: str | None = None,
    manager_name: str | None = None,
    password: str | None = None,
) -> UserOut:
    """Create a user. A rep names their sales rep (`rep`: id or name, which becomes the display
    name); a manager the name their reps' `manager` field carries. Raises Invalid(field) for a
    missing link, a short password or an unknown rep; Conflict when the username is taken."""
    name = username.strip().lower()
    if not name or len(name) > 80 or not all(c.isalnum() or c in "._-@" for c in name):
        raise Invalid("username", "1-80 letters, digits or . _ - @")
    if session.scalar(select(User.id).where(func.lower(User.username) == name)) is not None:
        raise Conflict(f"username {name!r} is taken")
    rep_id: int | None = None
    if role == "rep":
        if not rep:
            raise Invalid("rep", "a rep user names their sales rep (id or name)")
        row = session.scalar(
            select(SalesRep).where(
                SalesRep.id == int(rep) if rep.isdigit() else func.lower(SalesRep.name) == rep.strip().lower()
            )
        )
        if row is None:
            raise Invalid("rep", f"no sales rep {rep!r}")
        rep_id, display_name = row.id, display_name or row.name
    if role == "manager":
        if not manager_name:
            raise Invalid("manager_name", "a manager user names the manager their reps report to")
        display_name = display_name or manager_name
    user = User(
        username=name,
        display_name=(display_name or name).strip(),
        role=role,
        rep_id=rep_id,
        manager_name=manager_name.strip() if manager_name else None,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    return UserOut.model_validate(user)


def list_users(session: Session) -> list[UserOut]:
    """Every user, by username."""
    return [UserOut.model_validate(u) for u in session.scalars(select(User).order_by(User.username))]


def get_user(session: Session, user_id: int) -> UserOut:
    """The user of `user_id`. Raises NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return UserOut.model_validate(user)


def set_password(session: Session, username: str, password: str) -> UserOut:
    """Replace a user's password. Raises NotFound, Invalid("password")."""
    user = _user(session, username)
    user.password_hash = hash_password(password)
    session.flush()
    return UserOut.model_validate(user)


def set_disabled(session: Session, username: str, disabled: bool = True) -> UserOut:
    """Disable (or re-enable) a user; disabling also revokes every credential they hold, so open
    sessions and tokens stop working at once. Raises NotFound."""
    user = _user(session, username)
    user.disabled = disabled
    if disabled:
        session.execute(
            update(Credential)
            .where(Credential.user_id == user.id, Credential.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )
    session.flush()
    return UserOut.model_validate(user)


def authenticate(session: Session, username: str, password: str) -> UserOut | None:
    """The user whose username and password these are, or None (unknown, disabled, no password,
    or wrong password; the same None for each, so a caller cannot tell which)."""
    user = session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    if user is None or user.disabled or user.password_hash is None:
        # the same work as a real check, so timing does not tell an unknown name from a known one
        _hasher.hash(password or "x")
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return UserOut.model_validate(user)


def issue(
    session: Session,
    username_or_id: str | int,
    kind: CredentialKind,
    *,
    label: str | None = None,
    now: dt.datetime | None = None,
) -> Issued:
    """A new credential of `kind` for a user (by username or id): tokens never expire, sessions
    last SESSION_TTL from their last use, sign-in links LOGIN_LINK_TTL. Raises NotFound;
    Conflict for a disabled user."""
    user = (
        session.get(User, username_or_id)
        if isinstance(username_or_id, int)
        else _user(session, username_or_id)
    )
    if user is None:
        raise NotFound("user", username_or_id)
    if user.disabled:
        raise Conflict(f"user {user.username!r} is disabled")
    now = now or dt.datetime.now(dt.UTC)
    secret = secrets.token_urlsafe(32)
    expires = {"token": None, "session": now + SESSION_TTL, "login_link": now + LOGIN_LINK_TTL}[kind]
    session.add(
        Credential(user_id=user.id, kind=kind, secret_sha256=sha256(secret), label=label, expires_at=expires)
    )
    session.flush()
    return Issued(UserOut.model_validate(user), secret, expires)


def resolve(
    session: Session, secret: str, kinds: tuple[CredentialKind, ...], *, now: dt.datetime | None = None
) -> Caller | None:
    """The caller a presented secret of one of `kinds` stands for, or None (unknown, revoked,
    expired, or its user disabled). A session's expiry slides forward on use; a sign-in link is
    consumed (revoked) by the lookup that resolves it."""
    if not secret or len(secret) > 200:
        return None
    now = now or dt.datetime.now(dt.UTC)
    # no row lock: a request only reads its credential; the writes below are single statements
    row = session.execute(
        select(Credential, User)
        .join(User, User.id == Credential.user_id)
        .where(
            Credential.secret_sha256 == sha256(secret),
            Credential.kind.in_(kinds),
            Credential.revoked_at.is_(None),
            User.disabled.is_(False),
        )
    ).first()
    if row is None:
        return None
    credential, user = row
    if credential.expires_at is not None and credential.expires_at <= now:
        return None
    this = update(Credential).where(Credential.id == credential.id)
    if credential.kind == "login_link":
        # consumed by whichever lookup revokes it first: a link signs in once, even if two
        # requests present it at the same moment
        consumed = session.scalar(
            this.where(Credential.revoked_at.is_(None)).values(revoked_at=now).returning(Credential.id)
        )
        if consumed is None:
            return None
    elif credential.last_used_at is None or now - credential.last_used_at > dt.timedelta(minutes=1):
        # a write per request would be a hot row: record use at most once a minute
        slide = {"expires_at": now + SESSION_TTL} if credential.kind == "session" else {}
        session.execute(this.values(last_used_at=now, **slide))
    return caller_of(session, user)


def revoke(session: Session, secret: str) -> None:
    """Revoke the credential of a presented secret (sign out); unknown secrets are ignored."""
    session.execute(
        update(Credential)
        .where(Credential.secret_sha256 == sha256(secret), Credential.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


def caller_of(session: Session, user: User | UserOut) -> Caller:
    """The `Caller` of a user: their role, and the reps whose deals they may read and act on
    (a rep: their own; a manager: the reps whose `manager` is their name; an admin: all).
    `config/access.yaml` `read` may widen reading to `team` (a rep reads their manager's team)
    or `all`."""
    rep_name: str | None = None
    act: frozenset[int] | None
    if user.role == "admin":
        act = None
    elif user.role == "manager":
        act = frozenset(
            session.scalars(
                select(SalesRep.id).where(func.lower(SalesRep.manager) == (user.manager_name or "").lower())
            )
        )
    else:
        rep = session.get(SalesRep, user.rep_id) if user.rep_id is not None else None
        rep_name = rep.name if rep is not None else None
        act = frozenset({user.rep_id}) if user.rep_id is not None else frozenset()
    read = act
    read_rules: dict[str, str] = {str(role): width for role, width in load_access().read.items()}
    widen = read_rules.get(user.role, "own")
    if widen == "all":
        read = None
    elif widen == "team" and user.role == "rep" and user.rep_id is not None:
        manager = session.scalar(select(SalesRep.manager).where(SalesRep.id == user.rep_id))
        if manager:
            read = frozenset(session.scalars(select(SalesRep.id).where(SalesRep.manager == manager)))
    return Caller(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,  # type: ignore[arg-type]
        rep_id=user.rep_id,
        rep_name=rep_name,
        manager_name=user.manager_name,
        read_rep_ids=read,
        act_rep_ids=act,
    )
