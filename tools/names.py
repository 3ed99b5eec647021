"""The CRM's name index (`crm.names.NameIndex`), read once per database and cached: the chat's
entity resolver and the guards share it.

    index = name_index(session)     # one version read; the names only when they changed
    with names_read_once():         # a chat turn: the version is read by its first call only
        ...

The cache is keyed by the database URL and holds the names version the index was built under
(`fingerprint`: one primary-key read of a counter that database triggers raise on every write to
a name-bearing table), so an import or an edit by any process is seen on the next call. A rebuild
reads every name in one query (~10k deal ids for the Maven export).

A chat turn resolves its message, the previous reply and its answer's names with the index,
each in its own transaction (three version reads). Within `names_read_once()` (the turn, and the
tasks and worker threads it starts, which copy its context) the first call's version stands for
the rest: a name written while the turn runs is seen from the next turn on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Integer, String, cast, literal, null, select, union_all
from sqlalchemy.orm import Session

from crm.analytics import reference_date
from crm.models import Account, Contact, Deal, NamesVersion, PipelineStage, Product, SalesRep
from crm.names import NameIndex, NameRow

__all__ = ["NameIndex", "fingerprint", "invalidate_name_index", "name_index", "name_rows", "names_read_once"]

_cache: dict[str, tuple[int, NameIndex]] = {}
_VERSION_QUERY = select(NamesVersion.version).where(NamesVersion.id == 1)
_cache_lock = threading.Lock()
#: The versions read within the current `names_read_once` block, by database URL (None: outside).
_read_once: ContextVar[dict[str, int] | None] = ContextVar("flowstate_names_read_once", default=None)


def name_rows(session: Session) -> list[NameRow]:
    """Every name of the CRM as `NameRow`s, in one query: accounts (with their sectors and office
    countries), reps (with manager and regional office), contacts ("First Last"), products,
    pipeline stages (key and name) and deal ids. Rows of a kind come in the database's order."""
    no_id = cast(null(), Integer)
    no_text = cast(null(), String)

    def kind(name: str) -> Any:
        return literal(name, String).label("kind")

    query = union_all(
        select(kind("account"), Account.id, Account.name, no_text, no_text),
        select(kind("sector"), no_id, Account.sector, no_text, no_text).distinct(),
        select(kind("country"), no_id, Account.office_location, no_text, no_text).distinct(),
        select(kind("rep"), SalesRep.id, SalesRep.name, SalesRep.manager, SalesRep.regional_office),
        select(kind("product"), Product.id, Product.name, no_text, no_text),
        select(kind("contact"), Contact.id, Contact.first_name, Contact.last_name, no_text),
        select(kind("stage"), no_id, PipelineStage.name, PipelineStage.key, no_text),
        select(kind("deal"), Deal.id, Deal.external_id, no_text, no_text),
    )
    rows: list[NameRow] = []
    for k, row_id, name, a, b in session.execute(query):
        if k == "rep":
            rows.append(NameRow("rep", name, row_id, manager=a, office=b))
        elif k == "contact":
            rows.append(NameRow("contact", f"{name} {a}", row_id))
        elif k == "stage":
            rows.append(NameRow("stage", name, key=a))
        elif name:  # accounts without a sector or a country give none
            rows.append(NameRow(k, name, row_id))
    return rows


def fingerprint(session: Session) -> int:
    """The CRM's names version: a counter that statement triggers on accounts, contacts, sales
    reps, products, deals and pipeline stages raise with every write (`crm.models.NamesVersion`),
    read once per check by primary key. Seen only once the writing transaction has committed, so
    an index built after reading it holds at least those names."""
    version = session.execute(_VERSION_QUERY).scalar_one_or_none()
    if version is None:
        raise RuntimeError("crm_names_version has no row: run the migrations (flowstate migrate)")
    return int(version)


def name_index(session: Session, *, refresh: bool = False) -> NameIndex:
    """The cached `NameIndex` of this session's database, rebuilt when the CRM's names changed
    since it was built (or when `refresh`). Blocking; the same object while nothing changes."""
    db_key = str(session.get_bind().engine.url)
    seen = _read_once.get()
    fp = seen.get(db_key) if seen is not None else None
    if fp is None:
        fp = fingerprint(session)
        if seen is not None:
            seen[db_key] = fp
    with _cache_lock:
        hit = _cache.get(db_key)
        if hit is not None and hit[0] == fp and not refresh:
            return hit[1]
    # the reference date moves only with the deals, which the fingerprint covers: read it with
    # the names rather than on every resolved message
    index = NameIndex.from_rows(name_rows(session), as_of=reference_date(session))
    with _cache_lock:
        _cache[db_key] = (fp, index)
    return index


@contextmanager
def names_read_once() -> Iterator[None]:
    """Within the block, `name_index` reads the names version of a database once (see the
    module docstring): for the span of one chat turn, not for longer-lived work."""
    token = _read_once.set({})
    try:
        yield
    finally:
        _read_once.reset(token)


def invalidate_name_index() -> None:
    """Forget every cached index (the next call rebuilds). Changes are detected anyway; this is
    for tests and for changes the fingerprint cannot see."""
    with _cache_lock:
        _cache.clear()
