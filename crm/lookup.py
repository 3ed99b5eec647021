"""Finding accounts, reps and products by what a person typed.

Matching is case-insensitive and, failing that, ignores punctuation and spaces ("xx holding",
"XX-Holding" and "Xx-holding" are one name; "GTXPro" is "GTX Pro"). `find_*` rank candidates for a
resolver (exact, then prefix, then contains); `resolve_id` accepts only an unambiguous exact match.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from crm.errors import Inconsistent, NotFound
from crm.models import MAX_STORED_ID, Account, Product, SalesRep
from crm.schemas import AccountBrief, ProductOut, RepBrief

Named = TypeVar("Named", Account, Product, SalesRep)

ENTITY_NAMES: dict[type[Any], str] = {Account: "account", Product: "product", SalesRep: "sales rep"}

#: `session.info` key of the rows `get_by_ref` keeps referenced for the session's lifetime.
_HELD_ROWS = "flowstate.held_rows"


def normalize_name(text: str) -> str:
    """Lower case with everything but letters and digits removed: "Xx-holding" -> "xxholding"."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _sql_normalized(col: Any) -> ColumnElement[str]:
    # Postgres' [[:alnum:]] keeps non-ASCII letters too, like str.isalnum above.
    return func.regexp_replace(func.lower(col), "[^[:alnum:]]", "", "g")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _find(session: Session, model: type[Named], text: str, limit: int) -> list[Named]:
    """Candidates by name: exact (case-insensitive), else exact ignoring punctuation, else those
    starting with `text`, then those containing it (punctuation-insensitive); sorted by name."""
    text = text.strip()
    if not text:
        return []
    name = model.name
    exact = session.scalars(select(model).where(func.lower(name) == text.lower()).order_by(model.id)).all()
    if exact:
        return list(exact)[:limit]
    norm = normalize_name(text)
    if not norm:
        return []
    same = session.scalars(
        select(model).where(_sql_normalized(name) == norm).order_by(func.lower(name), model.id)
    ).all()
    if same:
        return list(same)[:limit]
    pattern = _like_escape(text.lower())
    prefix = session.scalars(
        select(model)
        .where(func.lower(name).like(pattern + "%", escape="\\"))
        .order_by(func.lower(name), model.id)
        .limit(limit)
    ).all()
    found: list[Named] = list(prefix)
    if len(found) < limit:
        seen = {m.id for m in found}
        contains = session.scalars(
            select(model)
            .where(_sql_normalized(name).contains(norm, autoescape=True))
            .order_by(func.lower(name), model.id)
            .limit(limit + len(found))
        ).all()
        found.extend(m for m in contains if m.id not in seen)
    return found[:limit]


def find_accounts(session: Session, text: str, limit: int = 10) -> list[AccountBrief]:
    """Accounts whose name matches `text`: exact case-insensitive match (or the same letters and
    digits ignoring punctuation) alone if there is one, else prefix matches then contains matches,
    at most `limit`. Empty list when nothing matches."""
    return [AccountBrief.model_validate(a) for a in _find(session, Account, text, limit)]


def find_reps(session: Session, text: str, limit: int = 10) -> list[RepBrief]:
    """Sales reps whose name matches `text` (same rules as `find_accounts`); "Darcel" finds
    "Darcel Schlecht" by prefix, "Schlecht" by contains."""
    return [
        RepBrief(id=r.id, name=r.name, manager=r.manager, regional_office=r.regional_office)
        for r in _find(session, SalesRep, text, limit)
    ]


def find_products(session: Session, text: str, limit: int = 10) -> list[ProductOut]:
    """Products whose name matches `text` (same rules as `find_accounts`); "gtxpro" -> GTX Pro."""
    return [ProductOut.model_validate(p) for p in _find(session, Product, text, limit)]


def _by_id(session: Session, model: type[Named], ref: int) -> Named:
    """The `model` row of id `ref`; NotFound when there is none (an id outside what a row can
    have included, without asking the database)."""
    row = session.get(model, ref) if 1 <= ref <= MAX_STORED_ID else None
    if row is None:
        raise NotFound(ENTITY_NAMES[model], ref)
    return row


def resolve_id(session: Session, model: type[Named], ref: int | str) -> int:
    """The id of the one `model` row that `ref` names: an id, or a name matched exactly
    (case-insensitive, else ignoring punctuation). Raises NotFound(entity, ref) when none matches
    (an id beyond the bigint range included) and Inconsistent("name", ...) when the
    punctuation-insensitive match is ambiguous."""
    entity = ENTITY_NAMES[model]
    if isinstance(ref, int):
        return _by_id(session, model, ref).id
    text = ref.strip()
    exact = session.scalars(select(model.id).where(func.lower(model.name) == text.lower())).all()
    if len(exact) == 1:
        return exact[0]
    same = session.execute(
        select(model.id, model.name).where(_sql_normalized(model.name) == normalize_name(text))
    ).all()
    if len(same) == 1:
        return int(same[0].id)
    if len(same) > 1:
        names = ", ".join(sorted(r.name for r in same))
        raise Inconsistent("name", f"{ref!r} could be any of: {names}")
    raise NotFound(entity, ref)


def get_by_ref(session: Session, model: type[Named], ref: int | str) -> Named:
    """The row `ref` names (see `resolve_id`); raises NotFound / Invalid as it does.

    The row is kept referenced by the session (`session.info`) until it closes: the session's
    identity map holds rows weakly, so without it every tool of one transaction that looks up
    the same account (a research briefing: profile, history, contacts) would load it again."""
    row = _by_id(session, model, ref if isinstance(ref, int) else resolve_id(session, model, ref))
    session.info.setdefault(_HELD_ROWS, {})[(model, row.id)] = row
    return row
