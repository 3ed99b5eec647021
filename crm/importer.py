"""Import a CRM export (the Maven Analytics "CRM Sales Opportunities" layout) into the database.

The export is a folder of four UTF-8 CSV files::

    accounts.csv        account, sector, year_established, revenue (millions USD), employees,
                        office_location, subsidiary_of
    products.csv        product, series, sales_price (USD)
    sales_teams.csv     sales_agent, manager, regional_office
    sales_pipeline.csv  opportunity_id, sales_agent, product, account, deal_stage, engage_date,
                        close_date, close_value (USD)

Rules (see `import_export`):

* **All or nothing.** Every file is read and checked before the database is touched; the writes
  then happen in one transaction, so any error leaves the database as it was.
* **Structural problems raise `ImportFileError(file, row, reason)`**: a missing file or column,
  bytes that are not UTF-8, a malformed CSV line, an unparseable date or number, an empty or
  duplicate key (account name, product name, rep name, opportunity_id), a value too long for its
  column. A file with such a problem is not an export we can trust, so nothing is written.
* **Referential problems of one row are rejections**: a deal naming an account, product or sales
  rep found neither in the export nor already in the CRM, an unknown deal stage, a close date
  before the engage date, a negative close value; an account whose `subsidiary_of` names an unknown
  account. The row is skipped (the account keeps no parent) and listed in `ImportReport.rejected`
  with its row and reason. Pass `allow_rejections=False` to roll back instead when any row is
  rejected (`ImportRejected` carries the report); the CLI does that unless `--allow-rejections`.
* **Known misspellings are repaired** from `config/import_mapping.yaml` (`repairs:`), and each
  distinct repair is reported once with its file, column, from, to, row count and example rows.
* **Idempotent upsert.** Accounts, products and reps are keyed by name, deals by `opportunity_id`
  (`Deal.external_id`). A row whose values equal the stored ones is left alone (its `updated_at`
  does not move); only differing rows are updated. Records absent from the export are kept.
* Every deal created gets one `DealStageHistory` row (NULL -> its stage) and every stage changed by
  an import another (old -> new), both with `changed_by="import"`. One `Event` of kind
  `crm.import` with the report summary is written in the same transaction.

Row numbers are spreadsheet rows: the header is row 1, the first record row 2. Cell values are
stripped of surrounding whitespace (not reported as a repair). Values of the pipeline:
a lost deal's value is its close value (0 in the Maven data, 0 when empty); an open deal without a
close value has value NULL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, Table, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from config.files import ImportMapping, load_import_mapping, load_pipeline
from crm.db import session_scope
from crm.models import Account, Deal, DealStageHistory, Event, Product, SalesRep

#: Called as `progress(entity, done, total)` while rows are written; entity is one of ENTITIES.
ProgressFn = Callable[[str, int, int], None]

ENTITIES = ("accounts", "products", "sales_reps", "deals")
ACCOUNTS_FILE = "accounts.csv"
PRODUCTS_FILE = "products.csv"
TEAMS_FILE = "sales_teams.csv"
PIPELINE_FILE = "sales_pipeline.csv"

#: Required columns of each file, in the Maven layout. Extra columns are ignored.
COLUMNS: dict[str, tuple[str, ...]] = {
    ACCOUNTS_FILE: (
        "account",
        "sector",
        "year_established",
        "revenue",
        "employees",
        "office_location",
        "subsidiary_of",
    ),
    PRODUCTS_FILE: ("product", "series", "sales_price"),
    TEAMS_FILE: ("sales_agent", "manager", "regional_office"),
    PIPELINE_FILE: (
        "opportunity_id",
        "sales_agent",
        "product",
        "account",
        "deal_stage",
        "engage_date",
        "close_date",
        "close_value",
    ),
}

#: Which repair table of import_mapping.yaml applies to which column of which file. A repair
#: keyed by a logical field (`product`) is applied wherever that field appears.
REPAIR_FIELDS: dict[tuple[str, str], str] = {
    (ACCOUNTS_FILE, "account"): "account",
    (ACCOUNTS_FILE, "subsidiary_of"): "account",
    (ACCOUNTS_FILE, "sector"): "sector",
    (ACCOUNTS_FILE, "office_location"): "office_location",
    (PRODUCTS_FILE, "product"): "product",
    (PRODUCTS_FILE, "series"): "series",
    (TEAMS_FILE, "sales_agent"): "sales_agent",
    (TEAMS_FILE, "manager"): "manager",
    (TEAMS_FILE, "regional_office"): "regional_office",
    (PIPELINE_FILE, "sales_agent"): "sales_agent",
    (PIPELINE_FILE, "product"): "product",
    (PIPELINE_FILE, "account"): "account",
    (PIPELINE_FILE, "deal_stage"): "deal_stage",
}

#: How many example row numbers a repair entry lists.
REPAIR_EXAMPLES = 5
#: Rows per executemany batch (also the progress granularity).
BATCH = 1000
#: Rejections copied into the `crm.import` event payload (the report keeps them all).
EVENT_REJECTIONS = 50
_CENT = Decimal("0.01")
_SMALLINT = 32767
_INT = 2_147_483_647


# --------------------------------------------------------------------------------------------
# errors and report
# --------------------------------------------------------------------------------------------


class ImportFileError(Exception):
    """A file of the export is malformed; nothing was written.

    `file` is the file name (e.g. "sales_pipeline.csv"), `row` the spreadsheet row (header = 1)
    or None when the problem is the file as a whole, `reason` a sentence fit to show a user.
    """

    def __init__(self, file: str, row: int | None, reason: str) -> None:
        self.file = file
        self.row = row
        self.reason = reason
        where = f"{file}, row {row}" if row is not None else file
        super().__init__(f"{where}: {reason}")


class Rejection(BaseModel):
    """A row that was skipped (or a value that was not applied), with its reason."""

    file: str
    row: int
    reason: str


class Repair(BaseModel):
    """One distinct repair of a known misspelling: `from_` -> `to` in column `field` of `file`,
    applied to `rows` rows; `examples` are the first few row numbers. Serialised as "from"."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True, validate_by_alias=True)

    file: str
    field: str
    from_: str = Field(alias="from")
    to: str
    rows: int
    examples: list[int]


class ImportReport(BaseModel):
    """What an import read, changed, repaired and rejected.

    `rows_read`: data rows per file; `created`/`updated`/`unchanged`: rows per entity
    (accounts, products, sales_reps, deals); `accounts`/`products`/`sales_reps`/`deals`: totals in
    the database after the import; `stage_changes`: DealStageHistory rows written; `duration_s`:
    wall time of the whole import in seconds.
    """

    model_config = ConfigDict(serialize_by_alias=True)

    folder: str
    rows_read: dict[str, int]
    created: dict[str, int]
    updated: dict[str, int]
    unchanged: dict[str, int]
    accounts: int
    products: int
    sales_reps: int
    deals: int
    stage_changes: int
    rejected: list[Rejection]
    repaired: list[Repair]
    duration_s: float

    @property
    def changed(self) -> bool:
        """True if the import created or updated anything."""
        return any(self.created.values()) or any(self.updated.values())

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest for the `crm.import` event: everything but the long lists are kept;
        rejections are cut to the first EVENT_REJECTIONS (their total is `rejected_count`)."""
        data = self.model_dump(mode="json")
        data["rejected_count"] = len(self.rejected)
        data["rejected"] = data["rejected"][:EVENT_REJECTIONS]
        return data


class ImportRejected(Exception):
    """Raised with `allow_rejections=False` when some rows were rejected; the transaction was
    rolled back. `report` describes what would have been imported."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        super().__init__(f"{len(report.rejected)} row(s) rejected; nothing was imported")


# --------------------------------------------------------------------------------------------
# reading and checking the files (no database)
# --------------------------------------------------------------------------------------------


@dataclass
class _Repairs:
    """Applies the repair tables and aggregates what was repaired."""

    mapping: ImportMapping
    seen: dict[tuple[str, str, str, str], list[int]] = field(default_factory=dict)

    def apply(self, file: str, column: str, row: int, value: str) -> str:
        logical = REPAIR_FIELDS.get((file, column))
        if logical is None or not value:
            return value
        fixed = self.mapping.repairs.get(logical, {}).get(value)
        if fixed is None or fixed == value:
            return value
        self.seen.setdefault((file, column, value, fixed), []).append(row)
        return fixed

    def report(self) -> list[Repair]:
        return [
            Repair(file=f, field=c, from_=a, to=b, rows=len(rows), examples=rows[:REPAIR_EXAMPLES])
            for (f, c, a, b), rows in self.seen.items()
        ]


def _decode(path: Path) -> str:
    name = path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ImportFileError(name, None, "file not found in the export folder") from None
    except OSError as exc:
        raise ImportFileError(name, None, f"cannot read the file: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        byte = raw[exc.start : exc.start + 1].hex()
        raise ImportFileError(
            name,
            line,
            f"not UTF-8 (byte 0x{byte} at offset {exc.start}); save the export as UTF-8",
        ) from None


def _read_csv(folder: Path, name: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (row number, {column: stripped value}) for each data row of `folder/name`.

    Raises ImportFileError for a missing file or column, bad encoding, a malformed CSV line or a
    row with the wrong number of fields. Blank lines are skipped.
    """
    reader = csv.reader(io.StringIO(_decode(folder / name), newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError(name, None, "the file is empty (no header row)")
        columns = [h.strip().lower() for h in header]
        dupes = sorted({c for c in columns if c and columns.count(c) > 1})
        if dupes:
            raise ImportFileError(name, 1, f"duplicate column(s): {', '.join(dupes)}")
        missing = [c for c in COLUMNS[name] if c not in columns]
        if missing:
            raise ImportFileError(
                name, 1, f"missing column(s): {', '.join(missing)} (found: {', '.join(columns)})"
            )
        row = 1
        for record in reader:
            row += 1
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if len(record) != len(columns):
                raise ImportFileError(name, row, f"expected {len(columns)} fields, found {len(record)}")
            yield row, {c: v.strip() for c, v in zip(columns, record, strict=True)}
    except csv.Error as exc:
        raise ImportFileError(name, reader.line_num, f"malformed CSV: {exc}") from None


def _limit(table: Table, column: str) -> int | None:
    return getattr(table.c[column].type, "length", None)


def _text(file: str, row: int, column: str, value: str, max_len: int | None) -> str | None:
    if not value:
        return None
    if max_len is not None and len(value) > max_len:
        raise ImportFileError(file, row, f"{column} is longer than {max_len} characters")
    return value


def _key(file: str, row: int, column: str, value: str, max_len: int | None) -> str:
    out = _text(file, row, column, value, max_len)
    if out is None:
        raise ImportFileError(file, row, f"{column} is empty")
    return out


def _int(file: str, row: int, column: str, value: str, maximum: int) -> int | None:
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ImportFileError(file, row, f"{column} {value!r} is not a whole number") from None
    if not -maximum <= number <= maximum:
        raise ImportFileError(file, row, f"{column} {value!r} is out of range")
    return number


def _decimal(file: str, row: int, column: str, value: str) -> Decimal | None:
    """A number rounded to cents as PostgreSQL's numeric(…, 2) stores it (half away from zero),
    so a re-import compares equal to what was stored."""
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ImportFileError(file, row, f"{column} {value!r} is not a number") from None
    if not number.is_finite():
        raise ImportFileError(file, row, f"{column} {value!r} is not a number")
    if abs(number) >= Decimal("1e12"):
        raise ImportFileError(file, row, f"{column} {value!r} is out of range")
    return number.quantize(_CENT, rounding=ROUND_HALF_UP)


def _date(file: str, row: int, column: str, value: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ImportFileError(file, row, f"{column} {value!r} is not a date (YYYY-MM-DD)") from None


@dataclass
class _AccountRow:
    row: int
    name: str
    values: dict[str, Any]
    parent: str | None


@dataclass
class _DealRow:
    row: int
    external_id: str
    rep: str | None
    product: str | None
    account: str | None
    stage_text: str
    engage_date: dt.date | None
    close_date: dt.date | None
    close_value: Decimal | None


@dataclass
class _Export:
    accounts: list[_AccountRow]
    products: list[tuple[int, str, dict[str, Any]]]
    reps: list[tuple[int, str, dict[str, Any]]]
    deals: list[_DealRow]
    rows_read: dict[str, int]
    repairs: _Repairs


def _unique(file: str, column: str, row: int, value: str, seen: dict[str, int]) -> None:
    first = seen.get(value)
    if first is not None:
        raise ImportFileError(file, row, f"duplicate {column} {value!r} (first seen in row {first})")
    seen[value] = row


def _read_export(folder: Path, mapping: ImportMapping) -> _Export:
    """Read and check all four files. Raises ImportFileError; touches no database."""
    repairs = _Repairs(mapping)
    acc_t, prod_t, rep_t, deal_t = (
        Account.__table__,
        Product.__table__,
        SalesRep.__table__,
        Deal.__table__,
    )
    assert isinstance(acc_t, Table) and isinstance(prod_t, Table)
    assert isinstance(rep_t, Table) and isinstance(deal_t, Table)

    def fix(file: str, column: str, row: int, value: str) -> str:
        return repairs.apply(file, column, row, value)

    f = ACCOUNTS_FILE
    accounts: list[_AccountRow] = []
    seen: dict[str, int] = {}
    for row, r in _read_csv(folder, f):
        name = _key(f, row, "account", fix(f, "account", row, r["account"]), _limit(acc_t, "name"))
        _unique(f, "account", row, name, seen)
        values = {
            "sector": _text(f, row, "sector", fix(f, "sector", row, r["sector"]), _limit(acc_t, "sector")),
            "year_established": _int(f, row, "year_established", r["year_established"], _SMALLINT),
            "revenue_musd": _decimal(f, row, "revenue", r["revenue"]),
            "employees": _int(f, row, "employees", r["employees"], _INT),
            "office_location": _text(
                f,
                row,
                "office_location",
                fix(f, "office_location", row, r["office_location"]),
                _limit(acc_t, "office_location"),
            ),
        }
        parent = fix(f, "subsidiary_of", row, r["subsidiary_of"]) or None
        accounts.append(_AccountRow(row, name, values, parent))

    f = PRODUCTS_FILE
    products: list[tuple[int, str, dict[str, Any]]] = []
    seen = {}
    for row, r in _read_csv(folder, f):
        name = _key(f, row, "product", fix(f, "product", row, r["product"]), _limit(prod_t, "name"))
        _unique(f, "product", row, name, seen)
        values = {
            "series": _text(f, row, "series", fix(f, "series", row, r["series"]), _limit(prod_t, "series")),
            "list_price": _decimal(f, row, "sales_price", r["sales_price"]),
        }
        products.append((row, name, values))

    f = TEAMS_FILE
    reps: list[tuple[int, str, dict[str, Any]]] = []
    seen = {}
    for row, r in _read_csv(folder, f):
        name = _key(
            f, row, "sales_agent", fix(f, "sales_agent", row, r["sales_agent"]), _limit(rep_t, "name")
        )
        _unique(f, "sales_agent", row, name, seen)
        values = {
            "manager": _text(
                f, row, "manager", fix(f, "manager", row, r["manager"]), _limit(rep_t, "manager")
            ),
            "regional_office": _text(
                f,
                row,
                "regional_office",
                fix(f, "regional_office", row, r["regional_office"]),
                _limit(rep_t, "regional_office"),
            ),
        }
        reps.append((row, name, values))

    f = PIPELINE_FILE
    deals: list[_DealRow] = []
    seen = {}
    for row, r in _read_csv(folder, f):
        ext = _key(f, row, "opportunity_id", r["opportunity_id"], _limit(deal_t, "external_id"))
        _unique(f, "opportunity_id", row, ext, seen)
        deals.append(
            _DealRow(
                row=row,
                external_id=ext,
                rep=fix(f, "sales_agent", row, r["sales_agent"]) or None,
                product=fix(f, "product", row, r["product"]) or None,
                account=fix(f, "account", row, r["account"]) or None,
                stage_text=fix(f, "deal_stage", row, r["deal_stage"]),
                engage_date=_date(f, row, "engage_date", r["engage_date"]),
                close_date=_date(f, row, "close_date", r["close_date"]),
                close_value=_decimal(f, row, "close_value", r["close_value"]),
            )
        )

    rows_read = {
        ACCOUNTS_FILE: len(accounts),
        PRODUCTS_FILE: len(products),
        TEAMS_FILE: len(reps),
        PIPELINE_FILE: len(deals),
    }
    return _Export(accounts, products, reps, deals, rows_read, repairs)


# --------------------------------------------------------------------------------------------
# writing (one transaction)
# --------------------------------------------------------------------------------------------


@dataclass
class _Counts:
    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENTITIES, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENTITIES, 0))
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENTITIES, 0))


def _batches(items: Sequence[dict[str, Any]]) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _update_by_id(session: Session, table: Table, columns: Iterable[str], rows: list[dict[str, Any]]) -> None:
    """executemany UPDATE ... WHERE id = :b_id; `updated_at` moves through the column's onupdate."""
    if not rows:
        return
    cols = list(columns)
    stmt = update(table).where(table.c.id == bindparam("b_id")).values({c: bindparam(f"b_{c}") for c in cols})
    for chunk in _batches(rows):
        session.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in chunk])


def _upsert_named(
    session: Session,
    table: Table,
    entity: str,
    rows: list[tuple[int, str, dict[str, Any]]],
    counts: _Counts,
    progress: ProgressFn | None,
) -> dict[str, int]:
    """Create or update rows keyed by `name`; returns {name: id} of every stored row."""
    cols = [c for c in rows[0][2]] if rows else []
    stored = {
        r.name: r for r in session.execute(select(table.c.id, table.c.name, *[table.c[c] for c in cols]))
    }
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for _, name, values in rows:
        old = stored.get(name)
        if old is None:
            new.append({"name": name, **values})
        elif any(getattr(old, c) != v for c, v in values.items()):
            changed.append({"id": old.id, **values})
        else:
            counts.unchanged[entity] += 1
    if new:
        session.execute(insert(table), new)
    _update_by_id(session, table, cols, changed)
    counts.created[entity] += len(new)
    counts.updated[entity] += len(changed)
    if progress:
        progress(entity, len(rows), len(rows))
    return dict(session.execute(select(table.c.name, table.c.id)).tuples().all())


def _import_accounts(
    session: Session, export: _Export, counts: _Counts, rejected: list[Rejection], progress: ProgressFn | None
) -> dict[str, int]:
    table = Account.__table__
    assert isinstance(table, Table)
    cols = ["sector", "year_established", "revenue_musd", "employees", "office_location"]
    stored = {
        r.name: r
        for r in session.execute(
            select(table.c.id, table.c.name, table.c.parent_account_id, *[table.c[c] for c in cols])
        )
    }
    new = [{"name": a.name, **a.values} for a in export.accounts if a.name not in stored]
    if new:
        session.execute(insert(table), new)
    ids: dict[str, int] = dict(session.execute(select(table.c.name, table.c.id)).tuples().all())

    # Second pass: parents can only be resolved once every account of the export has an id.
    changed: list[dict[str, Any]] = []
    for a in export.accounts:
        parent_id: int | None = None
        if a.parent is not None:
            parent_id = ids.get(a.parent)
            if parent_id is None:
                rejected.append(
                    Rejection(
                        file=ACCOUNTS_FILE,
                        row=a.row,
                        reason=f"subsidiary_of names unknown account {a.parent!r}; "
                        "account imported without a parent",
                    )
                )
            elif parent_id == ids[a.name]:
                parent_id = None
                rejected.append(
                    Rejection(
                        file=ACCOUNTS_FILE,
                        row=a.row,
                        reason="account is its own subsidiary_of; account imported without a parent",
                    )
                )
        wanted = {**a.values, "parent_account_id": parent_id}
        old = stored.get(a.name)
        if old is None:
            counts.created["accounts"] += 1
            if parent_id is not None:
                changed.append({"id": ids[a.name], **wanted})
        elif any(getattr(old, c) != v for c, v in wanted.items()):
            counts.updated["accounts"] += 1
            changed.append({"id": old.id, **wanted})
        else:
            counts.unchanged["accounts"] += 1
    _update_by_id(session, table, [*cols, "parent_account_id"], changed)
    if progress:
        progress("accounts", len(export.accounts), len(export.accounts))
    return ids


def _import_deals(
    session: Session,
    export: _Export,
    mapping: ImportMapping,
    refs: dict[str, dict[str, int]],
    counts: _Counts,
    rejected: list[Rejection],
    progress: ProgressFn | None,
) -> int:
    """Create or update deals; returns the number of stage-history rows written."""
    table = Deal.__table__
    hist = DealStageHistory.__table__
    assert isinstance(table, Table) and isinstance(hist, Table)
    pipeline = load_pipeline()
    lost = set(pipeline.lost_keys)
    cols = ["account_id", "product_id", "rep_id", "stage", "engage_date", "close_date", "value"]
    stored = {
        r.external_id: r
        for r in session.execute(select(table.c.id, table.c.external_id, *[table.c[c] for c in cols]))
    }
    total = len(export.deals)
    history = 0
    if progress:
        progress("deals", 0, total)
    for start in range(0, total, BATCH):
        new: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        for d in export.deals[start : start + BATCH]:
            problems: list[str] = []
            ids: dict[str, int | None] = {}
            for col, name, kind in (
                ("account_id", d.account, "account"),
                ("product_id", d.product, "product"),
                ("rep_id", d.rep, "sales_agent"),
            ):
                ids[col] = None
                if name is not None:
                    ids[col] = refs[col].get(name)
                    if ids[col] is None:
                        problems.append(f"unknown {kind} {name!r}")
            stage = mapping.stages.get(d.stage_text.lower())
            if stage is None:
                problems.append(
                    f"unknown deal_stage {d.stage_text!r} (known: {', '.join(sorted(mapping.stages))})"
                )
            if d.engage_date and d.close_date and d.close_date < d.engage_date:
                problems.append(f"close_date {d.close_date} is before engage_date {d.engage_date}")
            if d.close_value is not None and d.close_value < 0:
                problems.append(f"close_value {d.close_value} is negative")
            if problems:
                rejected.append(Rejection(file=PIPELINE_FILE, row=d.row, reason="; ".join(problems)))
                continue
            value = d.close_value
            if stage in lost and value is None:
                value = Decimal("0.00")
            wanted = {
                **ids,
                "stage": stage,
                "engage_date": d.engage_date,
                "close_date": d.close_date,
                "value": value,
            }
            old = stored.get(d.external_id)
            if old is None:
                new.append({"external_id": d.external_id, **wanted})
            elif any(getattr(old, c) != v for c, v in wanted.items()):
                changed.append({"id": old.id, **wanted})
                if old.stage != stage:
                    moves.append({"deal_id": old.id, "from_stage": old.stage, "to_stage": stage})
            else:
                counts.unchanged["deals"] += 1
        if new:
            # executemany with RETURNING (SQLAlchemy's insertmanyvalues): ids come back in batches.
            created = session.execute(insert(table).returning(table.c.id, table.c.stage), new).all()
            moves.extend({"deal_id": i, "from_stage": None, "to_stage": s} for i, s in created)
        _update_by_id(session, table, cols, changed)
        if moves:
            note = f"imported from {PIPELINE_FILE}"
            session.execute(insert(hist), [{**m, "changed_by": "import", "note": note} for m in moves])
        counts.created["deals"] += len(new)
        counts.updated["deals"] += len(changed)
        history += len(moves)
        if progress:
            progress("deals", min(start + BATCH, total), total)
    return history


def import_export(
    engine: Engine,
    folder: Path,
    progress: ProgressFn | None = None,
    *,
    allow_rejections: bool = True,
    mapping: ImportMapping | None = None,
) -> ImportReport:
    """Import the CRM export in `folder` (accounts.csv, products.csv, sales_teams.csv,
    sales_pipeline.csv) in one transaction and return what happened.

    Raises ImportFileError(file, row, reason) for a structural problem (see the module docstring)
    and ImportRejected(report) when rows were rejected and `allow_rejections` is False; in both
    cases the database is unchanged. `progress(entity, done, total)` is called as rows are
    written. `mapping` defaults to `config/import_mapping.yaml`. Safe to run concurrently: imports
    are serialised by a transaction-level advisory lock.
    """
    started = time.perf_counter()
    folder = Path(folder)
    mapping = mapping or load_import_mapping()
    if not folder.is_dir():
        raise ImportFileError(str(folder), None, "not a folder")
    export = _read_export(folder, mapping)
    counts = _Counts()
    rejected: list[Rejection] = []

    with session_scope(engine) as session:
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('flowstate.crm.import'))"))
        prod_t, rep_t = Product.__table__, SalesRep.__table__
        assert isinstance(prod_t, Table) and isinstance(rep_t, Table)
        refs = {
            "account_id": _import_accounts(session, export, counts, rejected, progress),
            "product_id": _upsert_named(session, prod_t, "products", export.products, counts, progress),
            "rep_id": _upsert_named(session, rep_t, "sales_reps", export.reps, counts, progress),
        }
        history = _import_deals(session, export, mapping, refs, counts, rejected, progress)

        totals = {
            name: session.scalar(select(func.count()).select_from(model))
            for name, model in (
                ("accounts", Account),
                ("products", Product),
                ("sales_reps", SalesRep),
                ("deals", Deal),
            )
        }
        rejected.sort(key=lambda r: (list(COLUMNS).index(r.file), r.row))
        report = ImportReport(
            folder=str(folder),
            rows_read=export.rows_read,
            created=counts.created,
            updated=counts.updated,
            unchanged=counts.unchanged,
            accounts=totals["accounts"] or 0,
            products=totals["products"] or 0,
            sales_reps=totals["sales_reps"] or 0,
            deals=totals["deals"] or 0,
            stage_changes=history,
            rejected=rejected,
            repaired=export.repairs.report(),
            duration_s=0.0,
        )
        if rejected and not allow_rejections:
            report.duration_s = round(time.perf_counter() - started, 3)
            raise ImportRejected(report)
        report.duration_s = round(time.perf_counter() - started, 3)
        session.add(Event(kind="crm.import", actor="import", payload=report.summary()))
    return report
