"""Reading an export's CSV files and deciding what each one is: its role (accounts, products,
sales_reps, deals) and which of its columns holds which canonical field. No database.

The synonyms, the file-name words and per-file role overrides come from `ImportMapping`
(`config/import_mapping.yaml`, optionally merged with a `--mapping` file). A file's role is the
one whose fields its headers match most (`id` and `name` count for none: every file has them);
the file name breaks ties; `roles:` of the mapping decides outright. A file matching no role is
left out and listed (role `ignore`). Errors are `ImportFileError(file, row, reason)`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from config.files import FileRole, ImportMapping, ImportRole, header_key

#: Roles in the order they are imported (a deal refers to the three before it, a contact to
#: accounts).
ROLES: tuple[ImportRole, ...] = ("accounts", "products", "sales_reps", "deals", "contacts")
#: The conventional file of each role (the Maven layout's), named when an export lacks one.
ROLE_FILES: dict[ImportRole, str] = {
    "accounts": "accounts.csv",
    "products": "products.csv",
    "sales_reps": "sales_teams.csv",
    "deals": "sales_pipeline.csv",
    "contacts": "contacts.csv",
}
#: Fields a file of the role cannot do without.
REQUIRED: dict[ImportRole, tuple[str, ...]] = {
    "accounts": ("name",),
    "products": ("name",),
    "sales_reps": ("name",),
    "deals": ("id", "stage"),
    "contacts": ("last_name",),
}
#: Fields that say nothing about a file's role.
GENERIC = frozenset({"id", "name"})
#: Id-reference fields: (role of the file, field) -> role whose `id` column it names.
REFERENCES: dict[tuple[ImportRole, str], ImportRole] = {
    ("accounts", "parent_id"): "accounts",
    ("sales_reps", "manager_id"): "sales_reps",
    ("deals", "account_id"): "accounts",
    ("deals", "owner_id"): "sales_reps",
    ("deals", "product_id"): "products",
    ("contacts", "account_id"): "accounts",
}
_MAPPING_HINT = "name it in a --mapping file"


class ImportFileError(Exception):
    """A file of the export is malformed or cannot be understood; nothing was written.

    `file` is the file name (e.g. "sales_pipeline.csv"), `row` the spreadsheet row (header = 1)
    or None when the problem is the file as a whole, `reason` a sentence fit to show a user.
    """

    def __init__(self, file: str, row: int | None, reason: str) -> None:
        self.file = file
        self.row = row
        self.reason = reason
        where = f"{file}, row {row}" if row is not None else file
        super().__init__(f"{where}: {reason}")


@dataclass
class CsvFile:
    """A parsed CSV file: `headers` stripped as written, `rows` as (spreadsheet row, cells
    stripped of surrounding whitespace), every row as long as the header."""

    name: str
    headers: list[str]
    rows: list[tuple[int, list[str]]]


class FilePlan(BaseModel):
    """What the importer made of one file: its `role` (`ignore`: left out, `note` says why),
    `columns` canonical field -> header used, `rows` data rows read."""

    file: str
    role: FileRole
    columns: dict[str, str] = {}
    rows: int = 0
    note: str | None = None


@dataclass
class RoleFile:
    """A file chosen for a role, with `index`: canonical field -> position of its column."""

    role: ImportRole
    csv: CsvFile
    index: dict[str, int]

    @property
    def name(self) -> str:
        return self.csv.name

    def header(self, field: str) -> str:
        """The file's header of `field` (used in messages, so they speak the file's language)."""
        return self.csv.headers[self.index[field]]


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


def read_csv(path: Path) -> CsvFile:
    """Parse one CSV file. Raises ImportFileError for bad encoding, an empty file, duplicate
    headers, a malformed CSV line or a row with the wrong number of fields. Blank lines are
    skipped."""
    name = path.name
    reader = csv.reader(io.StringIO(_decode(path), newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError(name, None, "the file is empty (no header row)")
        headers = [h.strip() for h in header]
        lowered = [h.lower() for h in headers]
        dupes = sorted({c for c in lowered if c and lowered.count(c) > 1})
        if dupes:
            raise ImportFileError(name, 1, f"duplicate column(s): {', '.join(dupes)}")
        rows: list[tuple[int, list[str]]] = []
        row = 1
        for record in reader:
            row += 1
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if len(record) != len(headers):
                raise ImportFileError(name, row, f"expected {len(headers)} fields, found {len(record)}")
            rows.append((row, [v.strip() for v in record]))
    except csv.Error as exc:
        raise ImportFileError(name, reader.line_num, f"malformed CSV: {exc}") from None
    return CsvFile(name, headers, rows)


def map_columns(headers: list[str], role: ImportRole, mapping: ImportMapping) -> dict[str, int]:
    """Canonical field -> column position for a file of `role`: for each field (in the model's
    order) its first synonym matching a header not taken by an earlier field."""
    keys = [header_key(h) for h in headers]
    synonyms = mapping.columns.of(role)
    index: dict[str, int] = {}
    for field in type(synonyms).model_fields:
        for synonym in getattr(synonyms, field):
            key = header_key(synonym)
            pos = next((i for i, k in enumerate(keys) if k == key and i not in index.values()), None)
            if pos is not None:
                index[field] = pos
                break
    return index


def _hinted(name: str, roles: list[ImportRole], mapping: ImportMapping) -> list[ImportRole]:
    lowered = name.lower()
    return [r for r in roles if any(w.lower() in lowered for w in mapping.file_names.get(r, []))]


def _role_of(file: CsvFile, mapping: ImportMapping) -> tuple[FileRole, str | None]:
    """The role of `file` and a note on how it was decided (None: by its headers alone)."""
    pinned = next((r for n, r in mapping.roles.items() if n.lower() == file.name.lower()), None)
    if pinned is not None:
        return pinned, "role set by roles: of the mapping"
    scores = {r: sum(1 for f in map_columns(file.headers, r, mapping) if f not in GENERIC) for r in ROLES}
    best = max(scores.values())
    tied = [r for r in ROLES if scores[r] == best]
    if best == 0:
        hinted = _hinted(file.name, list(ROLES), mapping)
        if len(hinted) == 1:
            return hinted[0], "role taken from the file name"
        return "ignore", (
            "no column matches a known role; set roles: {" + f"{file.name}: <role>" + "} with --mapping "
            "to import it"
        )
    if len(tied) == 1:
        return tied[0], None
    hinted = _hinted(file.name, tied, mapping)
    if len(hinted) == 1:
        return hinted[0], "role taken from the file name (its headers fit several roles)"
    raise ImportFileError(
        file.name,
        1,
        f"cannot tell whether this is a {' or a '.join(tied)} file from its headers "
        f"({', '.join(file.headers)}) or its name; set roles: {{{file.name}: <role>}} with --mapping",
    )


def plan_export(folder: Path, mapping: ImportMapping) -> tuple[dict[ImportRole, RoleFile], list[FilePlan]]:
    """Read every `*.csv` of `folder` (sorted by name) and decide each file's role and columns.

    Returns the file of each role present and the plan of every file (imported roles first, in
    ROLES order, then the files left out). Raises ImportFileError for an unreadable or malformed
    file, a role undecidable between several, two files of one role, a required field without a
    column, or an id column (AccountId...) whose role has no file.
    """
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if not paths:
        raise ImportFileError(str(folder), None, "no CSV file in the export folder")
    chosen: dict[ImportRole, RoleFile] = {}
    left_out: list[FilePlan] = []
    notes: dict[str, str | None] = {}
    for path in paths:
        file = read_csv(path)
        role, note = _role_of(file, mapping)
        if role == "ignore":
            left_out.append(FilePlan(file=file.name, role="ignore", rows=len(file.rows), note=note))
            continue
        if role in chosen:
            raise ImportFileError(
                file.name,
                None,
                f"both {chosen[role].name} and {file.name} look like the {role} file; "
                f"set roles: {{{file.name}: ignore}} (or another role) with --mapping",
            )
        index = map_columns(file.headers, role, mapping)
        missing = [f for f in REQUIRED[role] if f not in index]
        if missing:
            synonyms = mapping.columns.of(role)
            wanted = "; ".join(f"{f}: one of {', '.join(getattr(synonyms, f))}" for f in missing)
            raise ImportFileError(
                file.name,
                1,
                f"missing column(s) for {role} field(s) {', '.join(missing)} ({wanted}); headers seen: "
                f"{', '.join(file.headers)}; {_MAPPING_HINT} (columns: {role}: {missing[0]}: [<header>])",
            )
        chosen[role] = RoleFile(role, file, index)
        notes[file.name] = note
    if not chosen:
        raise ImportFileError(
            str(folder),
            None,
            "no file of the export looks like accounts, products, sales reps, deals or contacts ("
            + "; ".join(f"{p.file}: {p.note}" for p in left_out)
            + ")",
        )
    for (role, field), target in REFERENCES.items():
        rf = chosen.get(role)
        if rf is not None and field in rf.index and target not in chosen:
            raise ImportFileError(
                rf.name,
                None,
                f"column {rf.header(field)!r} holds {target} ids but the export has no {target} file",
            )
    needs: tuple[tuple[ImportRole, str, ImportRole], ...] = (
        ("deals", "account", "accounts"),
        ("deals", "product", "products"),
        ("contacts", "account", "accounts"),
    )
    for referrer, field, target in needs:
        # A deal's account or product needs its file: a name alone lacks the record's details.
        # Owners are different: many CRMs (HubSpot, Pipedrive) export them only as names.
        rf = chosen.get(referrer)
        if rf is not None and field in rf.index and target not in chosen:
            raise ImportFileError(
                ROLE_FILES[target],
                None,
                f"file not found in the export folder: {rf.name} names {target} in column "
                f"{rf.header(field)!r} but no file has {target} columns",
            )
    plans = [
        FilePlan(
            file=rf.name,
            role=role,
            columns={f: rf.csv.headers[i] for f, i in rf.index.items()},
            rows=len(rf.csv.rows),
            note=notes[rf.name],
        )
        for role in ROLES
        if (rf := chosen.get(role)) is not None
    ]
    return {r: chosen[r] for r in ROLES if r in chosen}, plans + left_out
