"""Import a CRM export (Maven, Salesforce, HubSpot or any CSV export) into the database.

The export is a folder of UTF-8 CSV files. Each file's role (accounts, products, sales_reps,
deals) and the column of each canonical field are recognised from its headers by the synonyms of
`config/import_mapping.yaml` (`crm.import_columns`; a `--mapping` file adds synonyms, stages and
roles). The canonical fields::

    accounts    id, name, sector, employees, revenue (millions USD) | annual_revenue (USD),
                year_established, location, parent (name) | parent_id (id of this file)
    products    id, name, series, price (USD)
    sales_reps  id, name, manager (name) | manager_id (id of this file), office
    deals       id (-> Deal.external_id), stage, engage_date, close_date, value (USD),
                account | account_id, owner | owner_id, product | product_id

The Maven Analytics "CRM Sales Opportunities" layout (accounts.csv, products.csv,
sales_teams.csv, sales_pipeline.csv) is one such export. Required: a name for accounts, products
and reps, an id and a stage for deals. A `*_id` field names a record by the `id` column of the
other file of the same export (Salesforce's AccountId, OwnerId). A deals file naming accounts or
products needs the file of that role; one naming owners without a users file (HubSpot) makes
each owner name a rep (name only, reported in `notes`). A file matching no role is left out and
listed in `ImportReport.files` (role `ignore`).

Rules (see `import_export`):

* **All or nothing.** Every file is read and checked before the database is touched; the writes
  then happen in one transaction, so any error leaves the database as it was.
* **Structural problems raise `ImportFileError(file, row, reason)`**: a missing file or required
  column (naming the file, the field and the headers seen), a role that headers, file name and
  `roles:` cannot decide, two files of one role, an id column whose role has no file, bytes
  that are not UTF-8, a malformed CSV line, an unparseable date or number, an empty or duplicate
  key (account name, product name, rep name, deal id, a file's own ids), a value too long for
  its column. A file with such a problem is not an export we can trust, so nothing is written.
* **Referential problems of one row are rejections**: a deal naming an account, product or sales
  rep found neither in the export nor already in the CRM, or an id found in no file of the
  export, a stage absent from `stages:` (never guessed), a close date before the engage date, a
  negative close value; an account whose parent is unknown, a rep whose manager id is unknown.
  The row is skipped (the account keeps no parent, the rep no manager) and listed in
  `ImportReport.rejected` with its row and reason. Pass `allow_rejections=False` to roll back
  instead when any row is rejected (`ImportRejected` carries the report); the CLI does that
  unless `--allow-rejections`.
* **Known misspellings are repaired** from `config/import_mapping.yaml` (`repairs:`), and each
  distinct repair is reported once with its file, column, from, to, row count and example rows.
* **Idempotent upsert.** Accounts, products and reps are keyed by name, deals by their id
  (`Deal.external_id`). A row whose values equal the stored ones is left alone (its `updated_at`
  does not move); only differing rows are updated, and only in the columns the file has (a
  column the export lacks keeps its stored value). Records absent from the export are kept.
* **Dry run** (`dry_run=True`): the same import, rolled back at the end; the report says what it
  would have done.
* Every deal created gets one `DealStageHistory` row (NULL -> its stage) and every stage changed by
  an import another (old -> new), both with `changed_by="import"`. One `Event` of kind
  `crm.import` with the report summary is written in the same transaction.

Row numbers are spreadsheet rows: the header is row 1, the first record row 2. Cell values are
stripped of surrounding whitespace (not reported as a repair). Messages name columns by the
file's own headers. Dates are ISO dates, or ISO date-times of which the date part is kept.
Values of the pipeline: a lost deal's value is its close value (0 in the Maven data, 0 when
empty); an open deal without a close value has value NULL.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, Table, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from config.files import ImportMapping, ImportRole, load_import_mapping, load_pipeline, stage_key
from crm.db import session_scope
from crm.import_columns import ROLES, FilePlan, ImportFileError, RoleFile, plan_export
from crm.models import Account, Contact, Deal, DealStageHistory, Event, Product, SalesRep

#: Called as `progress(entity, done, total)` while rows are written; entity is one of ENTITIES.
ProgressFn = Callable[[str, int, int], None]

#: Entities every report counts; `contacts` is counted too when the export has a contacts file.
ENTITIES: tuple[str, ...] = ("accounts", "products", "sales_reps", "deals")
__all__ = [
    "ENTITIES",
    "FilePlan",
    "ImportFileError",
    "ImportRejected",
    "ImportReport",
    "ProgressFn",
    "Rejection",
    "Repair",
    "import_export",
]

#: How many example row numbers a repair entry lists.
REPAIR_EXAMPLES = 5
#: Rows per executemany batch (also the progress granularity).
BATCH = 1000
#: Rejections copied into the `crm.import` event payload (the report keeps them all).
EVENT_REJECTIONS = 50
_CENT = Decimal("0.01")
_ONE = Decimal(1)
_MILLION = Decimal(1_000_000)
_SMALLINT = 32767
_INT = 2_147_483_647


# --------------------------------------------------------------------------------------------
# errors and report
# --------------------------------------------------------------------------------------------


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
    (accounts, products, sales_reps, deals, and contacts when the export has a contacts file);
    `accounts`/`products`/`sales_reps`/`deals`/`contacts`: totals in the database after the
    import (`contacts` None when the export has none); `stage_changes`: DealStageHistory rows
    written; `duration_s`: wall time of the whole import in seconds; `files`: the role and
    column mapping of every CSV file (role `ignore`: left out); `notes`: what the import inferred
    (reps from owner names); `dry_run`: the import was rolled back, the totals are what it would
    have left.
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
    contacts: int | None = None
    stage_changes: int
    rejected: list[Rejection]
    repaired: list[Repair]
    duration_s: float
    files: list[FilePlan] = []
    notes: list[str] = []
    dry_run: bool = False

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


#: Which repair table of import_mapping.yaml applies to which canonical field of which role.
REPAIR_FIELDS: dict[tuple[ImportRole, str], str] = {
    ("accounts", "name"): "account",
    ("accounts", "parent"): "account",
    ("accounts", "sector"): "sector",
    ("accounts", "location"): "office_location",
    ("products", "name"): "product",
    ("products", "series"): "series",
    ("sales_reps", "name"): "sales_agent",
    ("sales_reps", "manager"): "manager",
    ("sales_reps", "office"): "regional_office",
    ("deals", "owner"): "sales_agent",
    ("deals", "product"): "product",
    ("deals", "account"): "account",
    ("deals", "stage"): "deal_stage",
    ("contacts", "account"): "account",
}


@dataclass
class _Repairs:
    """Applies the repair tables and aggregates what was repaired (per file and header)."""

    mapping: ImportMapping
    seen: dict[tuple[str, str, str, str], list[int]] = field(default_factory=dict)

    def apply(self, rf: RoleFile, name: str, row: int, value: str) -> str:
        logical = REPAIR_FIELDS.get((rf.role, name))
        if logical is None or not value:
            return value
        fixed = self.mapping.repairs.get(logical, {}).get(value)
        if fixed is None or fixed == value:
            return value
        self.seen.setdefault((rf.name, rf.header(name), value, fixed), []).append(row)
        return fixed

    def report(self) -> list[Repair]:
        return [
            Repair(file=f, field=c, from_=a, to=b, rows=len(rows), examples=rows[:REPAIR_EXAMPLES])
            for (f, c, a, b), rows in self.seen.items()
        ]


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


def _decimal(file: str, row: int, column: str, value: str, scale: Decimal = _ONE) -> Decimal | None:
    """A number divided by `scale`, rounded to cents as PostgreSQL's numeric(…, 2) stores it (half
    away from zero), so a re-import compares equal to what was stored."""
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ImportFileError(file, row, f"{column} {value!r} is not a number") from None
    if not number.is_finite():
        raise ImportFileError(file, row, f"{column} {value!r} is not a number")
    number /= scale
    if abs(number) >= Decimal("1e12"):
        raise ImportFileError(file, row, f"{column} {value!r} is out of range")
    return number.quantize(_CENT, rounding=ROUND_HALF_UP)


def _date(file: str, row: int, column: str, value: str) -> dt.date | None:
    """A date, or the date part of an ISO date-time as written (Salesforce's
    2024-01-15T10:22:00.000Z, HubSpot's 2024-01-15 10:22): the day the export shows."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(value).date()
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
    #: references that could not be resolved at read time (an id of no record of the export)
    problems: list[str]


@dataclass
class _ContactRow:
    row: int
    #: the identity of the contact: ("email", lowered email) or ("name", first, last, account)
    key: tuple[str, ...]
    values: dict[str, Any]
    account: str | None
    problems: list[str]


@dataclass
class _Export:
    files: dict[ImportRole, RoleFile]
    plans: list[FilePlan]
    accounts: list[_AccountRow]
    products: list[tuple[int, str, dict[str, Any]]]
    reps: list[tuple[int, str, dict[str, Any]]]
    deals: list[_DealRow]
    contacts: list[_ContactRow]
    rows_read: dict[str, int]
    repairs: _Repairs
    #: rejections found while reading (an id naming no record)
    rejected: list[Rejection]
    notes: list[str]
    #: whether accounts' parents are part of the export (else stored parents are kept)
    parents: bool


def _unique(file: str, column: str, row: int, value: str, seen: dict[str, int]) -> None:
    first = seen.get(value)
    if first is not None:
        raise ImportFileError(file, row, f"duplicate {column} {value!r} (first seen in row {first})")
    seen[value] = row


class _Cells:
    """One row of a role file: `get(field)` is the (repaired) cell of that canonical field, ""
    when the file has no such column; `col(field)` the file's header for messages."""

    def __init__(self, rf: RoleFile, repairs: _Repairs, row: int, cells: list[str]) -> None:
        self.rf, self.repairs, self.row, self.cells = rf, repairs, row, cells

    def has(self, name: str) -> bool:
        return name in self.rf.index

    def col(self, name: str) -> str:
        return self.rf.header(name)

    def get(self, name: str) -> str:
        pos = self.rf.index.get(name)
        if pos is None:
            return ""
        return self.repairs.apply(self.rf, name, self.row, self.cells[pos])


def _rows(rf: RoleFile | None, repairs: _Repairs) -> Iterator[_Cells]:
    if rf is not None:
        for row, cells in rf.csv.rows:
            yield _Cells(rf, repairs, row, cells)


def _names_by_id(rf: RoleFile | None, repairs: _Repairs) -> dict[str, str]:
    """id -> name of the records of a role file that has an `id` column (duplicate ids raise)."""
    if rf is None or "id" not in rf.index:
        return {}
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for c in _rows(rf, repairs):
        ident = c.get("id")
        if ident:
            _unique(rf.name, c.col("id"), c.row, ident, seen)
            out[ident] = c.get("name")
    return out


def _resolve(
    c: _Cells, name_field: str, id_field: str, ids: dict[str, str], problems: list[str]
) -> str | None:
    """The name a row refers to: through its id column when that cell is set (an unknown id is
    added to `problems`), else its name column; None when both are empty."""
    ident = c.get(id_field)
    if ident:
        target = ids.get(ident)
        if target is None:
            problems.append(f"{c.col(id_field)} {ident!r} is the id of no record of the export")
        return target
    return c.get(name_field) or None


def _read_export(folder: Path, mapping: ImportMapping) -> _Export:
    """Read, classify and check every file. Raises ImportFileError; touches no database."""
    files, plans = plan_export(folder, mapping)
    repairs = _Repairs(mapping)
    acc_t, prod_t, rep_t, deal_t = (
        Account.__table__,
        Product.__table__,
        SalesRep.__table__,
        Deal.__table__,
    )
    assert isinstance(acc_t, Table) and isinstance(prod_t, Table)
    assert isinstance(rep_t, Table) and isinstance(deal_t, Table)
    con_t = Contact.__table__
    assert isinstance(con_t, Table)
    ids = {role: _names_by_id(files.get(role), repairs) for role in ROLES}
    # Reading the ids applied the name repairs once already; count each repair once per row.
    repairs.seen.clear()
    rejected: list[Rejection] = []
    notes: list[str] = []

    accounts: list[_AccountRow] = []
    seen: dict[str, int] = {}
    for c in _rows(files.get("accounts"), repairs):
        f, row = c.rf.name, c.row
        name = _key(f, row, c.col("name"), c.get("name"), _limit(acc_t, "name"))
        _unique(f, c.col("name"), row, name, seen)
        values: dict[str, Any] = {}
        if c.has("sector"):
            values["sector"] = _text(f, row, c.col("sector"), c.get("sector"), _limit(acc_t, "sector"))
        if c.has("year_established"):
            values["year_established"] = _int(
                f, row, c.col("year_established"), c.get("year_established"), _SMALLINT
            )
        if c.has("revenue"):
            values["revenue_musd"] = _decimal(f, row, c.col("revenue"), c.get("revenue"))
        elif c.has("annual_revenue"):
            values["revenue_musd"] = _decimal(
                f, row, c.col("annual_revenue"), c.get("annual_revenue"), _MILLION
            )
        if c.has("employees"):
            values["employees"] = _int(f, row, c.col("employees"), c.get("employees"), _INT)
        if c.has("location"):
            values["office_location"] = _text(
                f, row, c.col("location"), c.get("location"), _limit(acc_t, "office_location")
            )
        problems: list[str] = []
        parent = _resolve(c, "parent", "parent_id", ids["accounts"], problems)
        for p in problems:
            rejected.append(Rejection(file=f, row=row, reason=f"{p}; account imported without a parent"))
        accounts.append(_AccountRow(row, name, values, parent))

    products: list[tuple[int, str, dict[str, Any]]] = []
    seen = {}
    for c in _rows(files.get("products"), repairs):
        f, row = c.rf.name, c.row
        name = _key(f, row, c.col("name"), c.get("name"), _limit(prod_t, "name"))
        _unique(f, c.col("name"), row, name, seen)
        values = {}
        if c.has("series"):
            values["series"] = _text(f, row, c.col("series"), c.get("series"), _limit(prod_t, "series"))
        if c.has("price"):
            values["list_price"] = _decimal(f, row, c.col("price"), c.get("price"))
        products.append((row, name, values))

    reps: list[tuple[int, str, dict[str, Any]]] = []
    seen = {}
    for c in _rows(files.get("sales_reps"), repairs):
        f, row = c.rf.name, c.row
        name = _key(f, row, c.col("name"), c.get("name"), _limit(rep_t, "name"))
        _unique(f, c.col("name"), row, name, seen)
        values = {}
        if c.has("manager") or c.has("manager_id"):
            problems = []
            manager = _resolve(c, "manager", "manager_id", ids["sales_reps"], problems)
            for p in problems:
                rejected.append(Rejection(file=f, row=row, reason=f"{p}; rep imported without a manager"))
            col = c.col("manager") if c.has("manager") else c.col("manager_id")
            values["manager"] = _text(f, row, col, manager or "", _limit(rep_t, "manager"))
        if c.has("office"):
            values["regional_office"] = _text(
                f, row, c.col("office"), c.get("office"), _limit(rep_t, "regional_office")
            )
        reps.append((row, name, values))

    deals: list[_DealRow] = []
    seen = {}
    for c in _rows(files.get("deals"), repairs):
        f, row = c.rf.name, c.row
        ext = _key(f, row, c.col("id"), c.get("id"), _limit(deal_t, "external_id"))
        _unique(f, c.col("id"), row, ext, seen)
        problems = []
        deals.append(
            _DealRow(
                row=row,
                external_id=ext,
                rep=_resolve(c, "owner", "owner_id", ids["sales_reps"], problems),
                product=_resolve(c, "product", "product_id", ids["products"], problems),
                account=_resolve(c, "account", "account_id", ids["accounts"], problems),
                stage_text=c.get("stage"),
                engage_date=_date(f, row, c.col("engage_date"), c.get("engage_date"))
                if c.has("engage_date")
                else None,
                close_date=_date(f, row, c.col("close_date"), c.get("close_date"))
                if c.has("close_date")
                else None,
                close_value=_decimal(f, row, c.col("value"), c.get("value")) if c.has("value") else None,
                problems=problems,
            )
        )

    deal_file = files.get("deals")
    if deal_file is not None and "sales_reps" not in files and "owner" in deal_file.index:
        # An export without a users file (HubSpot, Pipedrive): the owners the deals name become
        # reps with a name only; reps already in the CRM keep their details.
        first: dict[str, int] = {}
        for d in deals:
            if d.rep is not None:
                first.setdefault(d.rep, d.row)
        for name, row in first.items():
            _key(deal_file.name, row, deal_file.header("owner"), name, _limit(rep_t, "name"))
        reps = [(row, name, {}) for name, row in first.items()]
        notes.append(
            f"no sales_reps file: {len(reps)} owner name(s) of {deal_file.name} "
            f"({deal_file.header('owner')!r}) are taken as sales reps"
        )

    contacts: list[_ContactRow] = []
    keys: dict[tuple[str, ...], int] = {}
    for c in _rows(files.get("contacts"), repairs):
        f, row = c.rf.name, c.row
        values = {
            "last_name": _key(f, row, c.col("last_name"), c.get("last_name"), _limit(con_t, "last_name"))
        }
        if c.has("first_name"):
            # NOT NULL in the schema: an empty cell is an empty first name
            given = _text(f, row, c.col("first_name"), c.get("first_name"), _limit(con_t, "first_name"))
            values["first_name"] = given or ""
        for name, column in (("email", "email"), ("phone", "phone"), ("title", "title")):
            if c.has(name):
                values[column] = _text(f, row, c.col(name), c.get(name), _limit(con_t, column))
        problems = []
        account = _resolve(c, "account", "account_id", ids["accounts"], problems)
        email = values.get("email")
        key: tuple[str, ...] = (
            ("email", email.casefold())
            if email
            else (
                "name",
                values.get("first_name", "").casefold(),
                values["last_name"].casefold(),
                account or "",
            )
        )
        first_row = keys.setdefault(key, row)
        if first_row != row:
            what = f"email {email!r}" if email else "name and account"
            raise ImportFileError(f, row, f"duplicate contact {what} (first seen in row {first_row})")
        contacts.append(_ContactRow(row, key, values, account, problems))

    rows_read = {rf.name: len(rf.csv.rows) for rf in files.values()}
    acc_file = files.get("accounts")
    parents = acc_file is not None and ("parent" in acc_file.index or "parent_id" in acc_file.index)
    return _Export(
        files, plans, accounts, products, reps, deals, contacts, rows_read, repairs, rejected, notes, parents
    )


# --------------------------------------------------------------------------------------------
# writing (one transaction)
# --------------------------------------------------------------------------------------------


@dataclass
class _Counts:
    entities: tuple[str, ...]
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for counts in (self.created, self.updated, self.unchanged):
            counts.update(dict.fromkeys(self.entities, 0))


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
    """Create or update accounts keyed by name, then set their parents; returns {name: id} of
    every stored account. Only the columns the file has are written."""
    table = Account.__table__
    assert isinstance(table, Table)
    cols = list(export.accounts[0].values) if export.accounts else []
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
    rf = export.files.get("accounts")
    file = rf.name if rf is not None else ""
    parent_col = ""
    if rf is not None and export.parents:
        parent_col = rf.header("parent") if "parent" in rf.index else rf.header("parent_id")

    # Second pass: parents can only be resolved once every account of the export has an id.
    changed: list[dict[str, Any]] = []
    for a in export.accounts:
        wanted = dict(a.values)
        if export.parents:
            parent_id: int | None = None
            if a.parent is not None:
                parent_id = ids.get(a.parent)
                if parent_id is None:
                    rejected.append(
                        Rejection(
                            file=file,
                            row=a.row,
                            reason=f"{parent_col} names unknown account {a.parent!r}; "
                            "account imported without a parent",
                        )
                    )
                elif parent_id == ids[a.name]:
                    parent_id = None
                    rejected.append(
                        Rejection(
                            file=file,
                            row=a.row,
                            reason=f"account is its own {parent_col}; account imported without a parent",
                        )
                    )
            wanted["parent_account_id"] = parent_id
        old = stored.get(a.name)
        if old is None:
            counts.created["accounts"] += 1
            if wanted.get("parent_account_id") is not None:
                changed.append({"id": ids[a.name], **wanted})
        elif any(getattr(old, c) != v for c, v in wanted.items()):
            counts.updated["accounts"] += 1
            changed.append({"id": old.id, **wanted})
        else:
            counts.unchanged["accounts"] += 1
    _update_by_id(session, table, [*cols, *(["parent_account_id"] if export.parents else [])], changed)
    if progress:
        progress("accounts", len(export.accounts), len(export.accounts))
    return ids


#: Deal columns and the canonical fields of a deals file that fill them (none: always written).
_DEAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "account_id": ("account", "account_id"),
    "product_id": ("product", "product_id"),
    "rep_id": ("owner", "owner_id"),
    "stage": (),
    "engage_date": ("engage_date",),
    "close_date": ("close_date",),
    "value": ("value",),
}


def _import_deals(
    session: Session,
    export: _Export,
    mapping: ImportMapping,
    refs: dict[str, dict[str, int]],
    counts: _Counts,
    rejected: list[Rejection],
    progress: ProgressFn | None,
) -> int:
    """Create or update deals keyed by external id; returns the number of stage-history rows
    written. A deal created gets every column (a lost deal without a value is worth 0); an
    existing deal only the columns the file has."""
    rf = export.files.get("deals")
    if rf is None:
        return 0
    table = Deal.__table__
    hist = DealStageHistory.__table__
    assert isinstance(table, Table) and isinstance(hist, Table)
    pipeline = load_pipeline()
    lost = set(pipeline.lost_keys)
    cols = [c for c, fields in _DEAL_COLUMNS.items() if not fields or any(f in rf.index for f in fields)]
    label = {
        col: rf.header(fields[0]) if fields[0] in rf.index else rf.header(fields[1])
        for col, fields in _DEAL_COLUMNS.items()
        if col.endswith("_id") and any(f in rf.index for f in fields)
    }
    stage_col = rf.header("stage")
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
            problems: list[str] = list(d.problems)
            ids: dict[str, int | None] = {}
            for col, name in (("account_id", d.account), ("product_id", d.product), ("rep_id", d.rep)):
                ids[col] = None
                if name is not None:
                    ids[col] = refs[col].get(name)
                    if ids[col] is None:
                        problems.append(f"unknown {label[col]} {name!r}")
            stage = mapping.stages.get(stage_key(d.stage_text))
            if stage is None:
                problems.append(
                    f"unknown {stage_col} {d.stage_text!r}: add it to stages: in "
                    "config/import_mapping.yaml or --mapping"
                )
            if d.engage_date and d.close_date and d.close_date < d.engage_date:
                problems.append(f"close_date {d.close_date} is before engage_date {d.engage_date}")
            if d.close_value is not None and d.close_value < 0:
                problems.append(f"{rf.header('value')} {d.close_value} is negative")
            if problems:
                rejected.append(Rejection(file=rf.name, row=d.row, reason="; ".join(problems)))
                continue
            value = d.close_value
            if stage in lost and value is None:
                value = Decimal("0.00")
            full = {
                **ids,
                "stage": stage,
                "engage_date": d.engage_date,
                "close_date": d.close_date,
                "value": value,
            }
            wanted = {c: full[c] for c in cols}
            old = stored.get(d.external_id)
            if old is None:
                new.append({"external_id": d.external_id, **full})
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
            note = f"imported from {rf.name}"
            session.execute(insert(hist), [{**m, "changed_by": "import", "note": note} for m in moves])
        counts.created["deals"] += len(new)
        counts.updated["deals"] += len(changed)
        history += len(moves)
        if progress:
            progress("deals", min(start + BATCH, total), total)
    return history


def _import_contacts(
    session: Session,
    export: _Export,
    accounts: dict[str, int],
    counts: _Counts,
    rejected: list[Rejection],
    progress: ProgressFn | None,
) -> None:
    """Create or update contacts: one with an e-mail address is the stored contact with that
    address (compared case-insensitively), one without is the stored contact of that first name,
    last name and account. Only the columns the file has are written."""
    rf = export.files["contacts"]
    table = Contact.__table__
    assert isinstance(table, Table)
    linked = "account" in rf.index or "account_id" in rf.index
    cols = [*(export.contacts[0].values if export.contacts else []), *(["account_id"] if linked else [])]
    label = rf.header("account") if "account" in rf.index else rf.header("account_id") if linked else ""
    names = {i: n for n, i in accounts.items()}
    stored: dict[tuple[str, ...], Any] = {}
    for r in session.execute(
        select(table.c.id, table.c.first_name, table.c.last_name, table.c.email, *[table.c[c] for c in cols])
    ):
        if r.email:
            stored[("email", r.email.casefold())] = r
        account = names.get(r.account_id, "") if "account_id" in cols else ""
        stored.setdefault(("name", r.first_name.casefold(), r.last_name.casefold(), account), r)
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for c in export.contacts:
        problems = list(c.problems)
        wanted = dict(c.values)
        if linked:
            wanted["account_id"] = None
            if c.account is not None:
                wanted["account_id"] = accounts.get(c.account)
                if wanted["account_id"] is None:
                    problems.append(f"unknown {label} {c.account!r}")
        if problems:
            rejected.append(Rejection(file=rf.name, row=c.row, reason="; ".join(problems)))
            continue
        old = stored.get(c.key)
        if old is None:
            new.append({"first_name": "", **wanted})
        elif any(getattr(old, k) != v for k, v in wanted.items()):
            changed.append({"id": old.id, **wanted})
        else:
            counts.unchanged["contacts"] += 1
    if new:
        session.execute(insert(table), new)
    _update_by_id(session, table, cols, changed)
    counts.created["contacts"] += len(new)
    counts.updated["contacts"] += len(changed)
    if progress:
        progress("contacts", len(export.contacts), len(export.contacts))


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so that `session_scope` rolls it back."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        super().__init__("dry run")


def import_export(
    engine: Engine,
    folder: Path,
    progress: ProgressFn | None = None,
    *,
    allow_rejections: bool = True,
    mapping: ImportMapping | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import the CRM export in `folder` (any CSV files whose headers `mapping` recognises; see
    the module docstring) in one transaction and return what happened.

    Raises ImportFileError(file, row, reason) for a structural problem (see the module docstring)
    and ImportRejected(report) when rows were rejected and `allow_rejections` is False; in both
    cases the database is unchanged. `progress(entity, done, total)` is called as rows are
    written. `mapping` defaults to `config/import_mapping.yaml`. `dry_run`: do everything, then
    roll the transaction back (the report, `dry_run=True`, says what would have happened). Safe
    to run concurrently: imports are serialised by a transaction-level advisory lock.
    """
    started = time.perf_counter()
    folder = Path(folder)
    mapping = mapping or load_import_mapping()
    if not folder.is_dir():
        raise ImportFileError(str(folder), None, "not a folder")
    export = _read_export(folder, mapping)
    counts = _Counts(ENTITIES + (("contacts",) if "contacts" in export.files else ()))
    rejected: list[Rejection] = list(export.rejected)
    order = {rf.name: ROLES.index(role) for role, rf in export.files.items()}

    try:
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
            if "contacts" in export.files:
                _import_contacts(session, export, refs["account_id"], counts, rejected, progress)

            totals = {
                name: session.scalar(select(func.count()).select_from(model))
                for name, model in (
                    ("accounts", Account),
                    ("products", Product),
                    ("sales_reps", SalesRep),
                    ("deals", Deal),
                    ("contacts", Contact),
                )
            }
            rejected.sort(key=lambda r: (order.get(r.file, len(ROLES)), r.file, r.row))
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
                contacts=totals["contacts"] or 0 if "contacts" in export.files else None,
                stage_changes=history,
                rejected=rejected,
                repaired=export.repairs.report(),
                duration_s=0.0,
                files=export.plans,
                notes=export.notes,
                dry_run=dry_run,
            )
            report.duration_s = round(time.perf_counter() - started, 3)
            if rejected and not allow_rejections:
                raise ImportRejected(report)
            if dry_run:
                raise _DryRun(report)
            session.add(Event(kind="crm.import", actor="import", payload=report.summary()))
    except _DryRun as done:
        return done.report
    return report
