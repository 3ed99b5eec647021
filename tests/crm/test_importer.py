"""The CRM importer against the real Maven export and a real PostgreSQL."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from crm.importer import ImportFileError, ImportRejected, ImportReport, import_export
from crm.models import Account, Deal, DealStageHistory, Event, Product, SalesRep
from tests.conftest import MAVEN_DIR

#: Tables whose contents an import may change; compared before/after a failed import.
TABLES = ("accounts", "contacts", "products", "sales_reps", "deals", "deal_stage_history", "events")


def snapshot(engine: Engine) -> dict[str, object]:
    """Row counts, the newest updated_at and a content checksum of each table an import writes."""
    out: dict[str, object] = {}
    with engine.connect() as conn:
        for t in TABLES:
            out[t] = conn.execute(
                text(f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x.id), '')) FROM {t} x")
            ).one()
        out["updated_at"] = conn.execute(
            text(
                "SELECT (SELECT max(updated_at) FROM accounts), (SELECT max(updated_at) FROM deals),"
                " (SELECT max(updated_at) FROM products), (SELECT max(updated_at) FROM sales_reps)"
            )
        ).one()
    return out


@pytest.fixture
def maven_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(MAVEN_DIR, folder)
    return folder


def small_export(tmp_path: Path, deals: int = 300, last: bool = False) -> Path:
    """The Maven export with only the first (or `last`) `deals` pipeline rows: cheaper to load."""
    folder = tmp_path / "small"
    shutil.copytree(MAVEN_DIR, folder)
    pipeline = folder / "sales_pipeline.csv"
    header, *rows = pipeline.read_text(encoding="utf-8").splitlines(keepends=True)
    pipeline.write_text(header + "".join(rows[-deals:] if last else rows[:deals]), encoding="utf-8")
    return folder


def edit_line(path: Path, line_no: int, old: str, new: str) -> None:
    """Replace `old` by `new` in line `line_no` (1-based) of a CSV file, keeping the rest as is."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert old in lines[line_no - 1], lines[line_no - 1]
    lines[line_no - 1] = lines[line_no - 1].replace(old, new, 1)
    path.write_text("".join(lines), encoding="utf-8")


def set_field(path: Path, line_no: int, index: int, value: str) -> str:
    """Set field `index` of line `line_no` (1-based) of a simple CSV file; returns the old value."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fields = lines[line_no - 1].split(",")
    old, fields[index] = fields[index], value
    lines[line_no - 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return old


def test_maven_import_then_reimport_is_a_noop(clean_db: Engine) -> None:
    calls: list[tuple[str, int, int]] = []
    t0 = time.perf_counter()
    report = import_export(clean_db, MAVEN_DIR, progress=lambda e, d, n: calls.append((e, d, n)))
    first_s = time.perf_counter() - t0
    print(f"\nMaven import: first run {first_s:.2f} s (report {report.duration_s:.2f} s)")

    assert (report.accounts, report.products, report.sales_reps, report.deals) == (85, 7, 35, 8800)
    assert report.created == {"accounts": 85, "products": 7, "sales_reps": 35, "deals": 8800}
    assert report.rows_read == {
        "accounts.csv": 85,
        "products.csv": 7,
        "sales_teams.csv": 35,
        "sales_pipeline.csv": 8800,
    }
    assert report.rejected == []
    assert report.stage_changes == 8800
    repairs = {(r.file, r.field, r.from_, r.to): r for r in report.repaired}
    gtx = repairs[("sales_pipeline.csv", "product", "GTXPro", "GTX Pro")]
    assert gtx.rows == 1480
    assert gtx.examples[0] == 3  # header is row 1; Z063OYW0 is the second record
    tech = repairs[("accounts.csv", "sector", "technolgy", "technology")]
    assert tech.rows == 12
    assert len(report.repaired) == 2
    # the JSON form carries the agreed top-level keys and "from"
    data = json.loads(report.model_dump_json())
    assert {"accounts", "products", "sales_reps", "deals", "rejected", "repaired"} <= data.keys()
    assert data["repaired"][0]["from"] in {"GTXPro", "technolgy"}
    assert ImportReport.model_validate_json(report.model_dump_json()) == report

    assert calls[-1] == ("deals", 8800, 8800)
    assert {c[0] for c in calls} == {"accounts", "products", "sales_reps", "deals"}
    assert [c[1] for c in calls if c[0] == "deals"] == sorted(c[1] for c in calls if c[0] == "deals")

    with clean_db.connect() as conn:
        stages = dict(conn.execute(select(Deal.stage, func.count()).group_by(Deal.stage)).tuples().all())
        assert stages == {"prospecting": 500, "engaging": 1589, "won": 4238, "lost": 2473}
        assert conn.scalar(select(func.count()).where(Product.name == "GTXPro")) == 0
        assert conn.scalar(select(func.count()).where(Account.sector == "technolgy")) == 0
        assert conn.scalar(select(func.count()).where(Account.sector == "technology")) == 12
        assert conn.scalar(select(func.count()).where(Deal.account_id.is_(None))) == 1425
        # lost deals are worth 0, open deals have no value, won deals keep their close value
        assert conn.scalar(select(func.count()).where(Deal.stage == "lost", Deal.value != 0)) == 0
        assert (
            conn.scalar(
                select(func.count()).where(
                    Deal.stage.in_(["prospecting", "engaging"]), Deal.value.isnot(None)
                )
            )
            == 0
        )
        first = conn.execute(
            select(Deal.stage, Deal.value, Deal.engage_date, Deal.close_date, Product.name, SalesRep.name)
            .join(Product, Deal.product_id == Product.id)
            .join(SalesRep, Deal.rep_id == SalesRep.id)
            .where(Deal.external_id == "Z063OYW0")
        ).one()
        assert (first[0], str(first[1]), str(first[2]), str(first[3]), first[4], first[5]) == (
            "won",
            "4514.00",
            "2016-10-25",
            "2017-03-11",
            "GTX Pro",
            "Darcel Schlecht",
        )
        parent = Account.__table__.alias("parent")
        child = conn.execute(
            select(parent.c.name)
            .select_from(Account)
            .join(parent, Account.parent_account_id == parent.c.id)
            .where(Account.name == "Codehow")
        ).scalar_one()
        assert child == "Acme Corporation"
        assert conn.scalar(select(func.count()).where(Account.parent_account_id.isnot(None))) == 15
        hist = conn.execute(
            select(DealStageHistory.from_stage, DealStageHistory.to_stage, DealStageHistory.changed_by)
            .join(Deal, Deal.id == DealStageHistory.deal_id)
            .where(Deal.external_id == "1C1I7A6R")
        ).all()
        assert [tuple(h) for h in hist] == [(None, "won", "import")]
        events = conn.execute(select(Event.payload).where(Event.kind == "crm.import")).scalars().all()
        assert len(events) == 1 and events[0]["deals"] == 8800 and events[0]["rejected_count"] == 0

    before = snapshot(clean_db)
    t0 = time.perf_counter()
    again = import_export(clean_db, MAVEN_DIR)
    print(f"Maven import: second run {time.perf_counter() - t0:.2f} s")
    assert not again.changed
    assert again.created == again.updated == {"accounts": 0, "products": 0, "sales_reps": 0, "deals": 0}
    assert again.unchanged == {"accounts": 85, "products": 7, "sales_reps": 35, "deals": 8800}
    assert again.stage_changes == 0
    assert len(again.repaired) == 2  # repairs are reported on every run: the file still has them
    after = snapshot(clean_db)
    for t in ("accounts", "products", "sales_reps", "deals", "deal_stage_history"):
        assert after[t] == before[t], t
    assert after["updated_at"] == before["updated_at"]
    with clean_db.connect() as conn:
        assert conn.scalar(select(func.count()).where(Event.kind == "crm.import")) == 2


def test_reimport_updates_changed_rows_and_records_stage_moves(clean_db: Engine, tmp_path: Path) -> None:
    export = small_export(tmp_path, 1000, last=True)  # the newest deals: some still open
    assert import_export(clean_db, export).created["deals"] == 1000
    pipeline = export / "sales_pipeline.csv"
    # an open Engaging deal is closed as Won
    lines = pipeline.read_text(encoding="utf-8").splitlines()
    row = next(i for i, line in enumerate(lines, start=1) if ",Engaging," in line)
    ext = lines[row - 1].split(",")[0]
    set_field(pipeline, row, 4, "Won")
    set_field(pipeline, row, 6, "2017-12-31")
    set_field(pipeline, row, 7, "1234")
    edit_line(export / "products.csv", 2, "550", "575")

    report = import_export(clean_db, export)
    assert report.updated == {"accounts": 0, "products": 1, "sales_reps": 0, "deals": 1}
    assert report.unchanged["deals"] == 999
    assert report.stage_changes == 1
    with clean_db.connect() as conn:
        deal = conn.execute(select(Deal.id, Deal.stage, Deal.value).where(Deal.external_id == ext)).one()
        assert (deal.stage, int(deal.value)) == ("won", 1234)
        hist = conn.execute(
            select(DealStageHistory.from_stage, DealStageHistory.to_stage)
            .where(DealStageHistory.deal_id == deal.id)
            .order_by(DealStageHistory.id)
        ).all()
        assert [tuple(h) for h in hist] == [(None, "engaging"), ("engaging", "won")]
        assert int(conn.scalar(select(Product.list_price).where(Product.name == "GTX Basic"))) == 575


@pytest.mark.parametrize(
    ("file", "breakage", "row", "words"),
    [
        # an account without a name column: the role is still recognised by its other headers
        ("accounts.csv", "missing_column", 1, "missing column(s) for accounts field(s) name"),
        ("sales_pipeline.csv", "bad_date", 5, "'2016-13-45' is not a date"),
        ("sales_pipeline.csv", "bad_number", 4, "'12O4' is not a number"),
        ("sales_teams.csv", "latin1", 7, "not UTF-8"),
        (
            "sales_pipeline.csv",
            "duplicate_id",
            9,
            "duplicate opportunity_id '1C1I7A6R' (first seen in row 2)",
        ),
        ("sales_pipeline.csv", "short_row", 6, "expected 8 fields, found 7"),
    ],
)
def test_malformed_export_raises_and_leaves_db_unchanged(
    clean_db: Engine, maven_copy: Path, tmp_path: Path, file: str, breakage: str, row: int, words: str
) -> None:
    assert import_export(clean_db, small_export(tmp_path)).deals == 300  # data that must survive
    before = snapshot(clean_db)
    path = maven_copy / file
    if breakage == "missing_column":
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text(
            "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != 0) for line in lines) + "\n",
            encoding="utf-8",
        )
    elif breakage == "bad_date":
        set_field(path, 5, 5, "2016-13-45")
    elif breakage == "bad_number":
        set_field(path, 4, 7, "12O4")
    elif breakage == "latin1":
        raw = path.read_bytes().splitlines(keepends=True)
        raw[6] = raw[6].replace(b",Central", "Jos\u00e9,Central".encode("latin-1"), 1)
        path.write_bytes(b"".join(raw))
    elif breakage == "duplicate_id":
        set_field(path, 9, 0, "1C1I7A6R")
    elif breakage == "short_row":
        line = path.read_text(encoding="utf-8").splitlines()[5]
        edit_line(path, 6, line, line.rsplit(",", 1)[0])

    with pytest.raises(ImportFileError) as err:
        import_export(clean_db, maven_copy)
    assert (err.value.file, err.value.row) == (file, row)
    assert words in err.value.reason
    assert str(err.value).startswith(f"{file}, row {row}: ")
    assert snapshot(clean_db) == before


def test_missing_file_is_a_file_error(clean_db: Engine, maven_copy: Path) -> None:
    (maven_copy / "products.csv").unlink()
    with pytest.raises(ImportFileError) as err:
        import_export(clean_db, maven_copy)
    assert (err.value.file, err.value.row) == ("products.csv", None)
    with clean_db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Deal)) == 0


def test_unknown_references_are_rejected_with_row_and_reason(clean_db: Engine, maven_copy: Path) -> None:
    pipeline = maven_copy / "sales_pipeline.csv"
    set_field(pipeline, 10, 1, "Nobody Known")
    set_field(pipeline, 20, 4, "Maybe")
    edit_line(maven_copy / "accounts.csv", 3, "United States,", "United States,Ghost Holdings")
    rejected_ext = [pipeline.read_text(encoding="utf-8").splitlines()[i].split(",")[0] for i in (9, 19)]

    # Without permission to reject, nothing is written and the report says why.
    with pytest.raises(ImportRejected) as err:
        import_export(clean_db, maven_copy, allow_rejections=False)
    assert len(err.value.report.rejected) == 3
    with clean_db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Deal)) == 0
        assert conn.scalar(select(func.count()).select_from(Account)) == 0

    report = import_export(clean_db, maven_copy)
    got = [(r.file, r.row, r.reason) for r in report.rejected]
    assert got[0][:2] == ("accounts.csv", 3) and "unknown account 'Ghost Holdings'" in got[0][2]
    assert got[1] == ("sales_pipeline.csv", 10, "unknown sales_agent 'Nobody Known'")
    assert got[2][:2] == ("sales_pipeline.csv", 20) and "unknown deal_stage 'Maybe'" in got[2][2]
    assert report.deals == 8798 and report.created["deals"] == 8798
    assert report.accounts == 85  # the account itself is kept, without a parent
    with clean_db.connect() as conn:
        assert conn.scalar(select(func.count()).where(Deal.external_id.in_(rejected_ext))) == 0
        payload = conn.execute(select(Event.payload).where(Event.kind == "crm.import")).scalar_one()
        assert payload["rejected_count"] == 3
