"""Importing exports of other CRMs (Salesforce, HubSpot) by header detection, against a real
PostgreSQL. The fixtures under tests/crm/data/ are small hand-written exports; the expected
figures below were counted by hand from those files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from app.commands import data
from config.files import ImportMapping, load_import_mapping, read_import_mapping
from config.settings import get_settings
from crm.importer import ImportFileError, ImportRejected, import_export
from crm.models import Account, Contact, Deal, Product, SalesRep
from tests.crm.test_importer import snapshot

DATA = Path(__file__).parent / "data"
SALESFORCE = DATA / "salesforce"
HUBSPOT = DATA / "hubspot"

# Opportunity.csv: Prospecting 006A06, 006A13; Qualification 006A05 + Needs Analysis 006A08;
# Value Proposition 006A09 + Proposal/Price Quote 006A10; Negotiation/Review 006A03;
# Closed Won 006A01, 006A02, 006A07, 006A12; Closed Lost 006A04, 006A11, 006A14.
SALESFORCE_STAGES = {"prospecting": 2, "qualified": 2, "proposal": 2, "negotiation": 1, "won": 4, "lost": 3}
SALESFORCE_WON = Decimal("74750.50")  # 48000 + 6500 + 9000 + 11250.50
# deals.csv: appointmentscheduled 12006, 12011; qualifiedtobuy 12003, 12012; presentationscheduled
# 12004 + decisionmakerboughtin 12008; contractsent 12002; closedwon 12001, 12005, 12009;
# closedlost 12007, 12010.
HUBSPOT_STAGES = {"engaging": 2, "qualified": 2, "proposal": 2, "negotiation": 1, "won": 3, "lost": 2}
HUBSPOT_WON = Decimal("88550.00")  # 4800 + 61000 + 22750


def pipeline_summary(engine: Engine) -> tuple[dict[str, int], Decimal]:
    """Deals per stage and the total value of won deals."""
    with engine.connect() as conn:
        stages = dict(conn.execute(select(Deal.stage, func.count()).group_by(Deal.stage)).tuples().all())
        won = conn.scalar(select(func.coalesce(func.sum(Deal.value), 0)).where(Deal.stage == "won"))
    return stages, Decimal(won or 0)


def copy_export(src: Path, tmp_path: Path) -> Path:
    folder = tmp_path / src.name
    shutil.copytree(src, folder)
    return folder


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def cli(clean_db: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    app = typer.Typer()
    data.register(app)
    yield app
    get_settings.cache_clear()


def test_salesforce_export_resolves_ids_and_is_idempotent(clean_db: Engine) -> None:
    report = import_export(clean_db, SALESFORCE)
    roles = {p.file: p.role for p in report.files}
    assert roles == {
        "Account.csv": "accounts",
        "Product2.csv": "products",
        "User.csv": "sales_reps",
        "Opportunity.csv": "deals",
    }
    opportunity = next(p for p in report.files if p.file == "Opportunity.csv")
    assert opportunity.columns["account_id"] == "AccountId"
    assert opportunity.columns["stage"] == "StageName"
    assert report.rejected == []
    assert (report.accounts, report.products, report.sales_reps, report.deals) == (6, 4, 5, 14)
    assert report.stage_changes == 14
    assert pipeline_summary(clean_db) == (SALESFORCE_STAGES, SALESFORCE_WON)

    with clean_db.connect() as conn:
        # AccountId / OwnerId / Product2Id resolved through the ids of the other files
        deal = conn.execute(
            select(Account.name, SalesRep.name, Product.name, Deal.value, Deal.engage_date, Deal.close_date)
            .join(Account, Deal.account_id == Account.id)
            .join(SalesRep, Deal.rep_id == SalesRep.id)
            .join(Product, Deal.product_id == Product.id)
            .where(Deal.external_id == "006A12")
        ).one()
        assert (deal[0], deal[1], deal[2], str(deal[3]), str(deal[4]), str(deal[5])) == (
            "Northwind Traders",
            "Chen Wei",
            "Data Connector",
            "11250.50",
            "2025-02-20",  # the date part of CreatedDate 2025-02-20T14:15:00.000Z
            "2025-04-30",
        )
        labs = conn.execute(
            select(Account.revenue_musd, Account.employees, Account.sector, Account.office_location).where(
                Account.name == "Contoso Labs"
            )
        ).one()
        assert (str(labs[0]), labs[1], labs[2], labs[3]) == (
            "45.50",
            310,
            "Medical",
            "Germany",
        )  # USD -> M USD
        parent = conn.scalar(
            select(Account.name).where(
                Account.id
                == select(Account.parent_account_id).where(Account.name == "Contoso Labs").scalar_subquery()
            )
        )
        assert parent == "Contoso Pharma"  # ParentId
        alice = conn.execute(
            select(SalesRep.manager, SalesRep.regional_office).where(SalesRep.name == "Alice Moreau")
        ).one()
        assert tuple(alice) == ("Dana Okafor", "West")  # ManagerId resolved to the manager's name
        assert conn.scalar(select(Product.series).where(Product.name == "Premium Support")) == "Services"
        # an open deal without an Amount has no value; a lost deal keeps its exported Amount
        assert conn.scalar(select(Deal.value).where(Deal.external_id == "006A06")) is None
        assert conn.scalar(select(Deal.value).where(Deal.external_id == "006A04")) == Decimal("12000.00")

    before = snapshot(clean_db)
    again = import_export(clean_db, SALESFORCE)
    assert not again.changed and again.stage_changes == 0
    assert again.unchanged == {"accounts": 6, "products": 4, "sales_reps": 5, "deals": 14}
    after = snapshot(clean_db)
    for table in ("accounts", "products", "sales_reps", "deals", "deal_stage_history"):
        assert after[table] == before[table], table
    assert after["updated_at"] == before["updated_at"]


def test_hubspot_export_takes_owners_as_reps_and_is_idempotent(clean_db: Engine) -> None:
    report = import_export(clean_db, HUBSPOT)
    assert {p.file: p.role for p in report.files} == {
        "companies.csv": "accounts",
        "deals.csv": "deals",
        "contacts.csv": "contacts",
    }
    assert report.rejected == []
    # no users file: the three "Deal owner" names become sales reps
    assert report.created == {"accounts": 6, "products": 0, "sales_reps": 3, "deals": 12, "contacts": 5}
    assert report.contacts == 5
    assert any("owner name(s)" in n for n in report.notes)
    assert pipeline_summary(clean_db) == (HUBSPOT_STAGES, HUBSPOT_WON)
    with clean_db.connect() as conn:
        assert conn.scalar(select(Deal.value).where(Deal.external_id == "12010")) == Decimal("0.00")  # lost
        assert conn.scalar(select(Deal.account_id).where(Deal.external_id == "12012")) is None
        assert conn.scalar(select(Account.revenue_musd).where(Account.name == "Kestrel Health")) == Decimal(
            "410.00"
        )
        freight_parent = conn.scalar(
            select(Account.parent_account_id).where(Account.name == "Hilltop Freight")
        )
        assert freight_parent == conn.scalar(select(Account.id).where(Account.name == "Hilltop Logistics"))
        assert str(conn.scalar(select(Deal.engage_date).where(Deal.external_id == "12001"))) == "2024-12-02"
        sofia = conn.execute(
            select(Contact.first_name, Contact.email, Contact.title, Account.name)
            .join(Account, Contact.account_id == Account.id)
            .where(Contact.last_name == "Alvarez")
        ).one()
        assert tuple(sofia) == ("Sofia", None, "Dispatcher", "Hilltop Freight")

    before = snapshot(clean_db)
    again = import_export(clean_db, HUBSPOT)
    assert not again.changed
    # the contact without an e-mail address is found again by name and account
    assert again.unchanged == {"accounts": 6, "products": 0, "sales_reps": 3, "deals": 12, "contacts": 5}
    after = snapshot(clean_db)
    for table in ("accounts", "products", "sales_reps", "deals", "deal_stage_history"):
        assert after[table] == before[table], table
    assert after["updated_at"] == before["updated_at"]
    with clean_db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Contact)) == 5


def test_dry_run_shows_the_mapping_and_writes_nothing(
    cli: typer.Typer, clean_db: Engine, tmp_path: Path
) -> None:
    folder = copy_export(HUBSPOT, tmp_path)
    (folder / "notes.csv").write_text("Note body,Timestamp\nCalled back,2025-01-01\n", encoding="utf-8")
    before = snapshot(clean_db)
    runner = CliRunner()
    shown = runner.invoke(cli, ["import", str(folder), "--dry-run"])
    assert shown.exit_code == 0, shown.output
    out = " ".join(shown.stdout.split())  # rich wraps long lines
    assert "deals.csv as deals" in out and "stage <- 'Deal Stage'" in out
    assert "companies.csv as accounts" in out and "annual_revenue <- 'Annual Revenue'" in out
    assert "left out notes.csv" in out
    assert "dry run: nothing was written" in out
    as_json = runner.invoke(cli, ["import", str(folder), "--dry-run", "--json"])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert report["dry_run"] is True
    assert report["created"]["deals"] == 12 and report["deals"] == 12  # what it would have done
    assert {f["file"]: f["role"] for f in report["files"]}["notes.csv"] == "ignore"
    assert snapshot(clean_db) == before  # row counts and contents unchanged, no crm.import event


def test_unmapped_stage_is_rejected_with_row_and_reason(clean_db: Engine, tmp_path: Path) -> None:
    folder = copy_export(HUBSPOT, tmp_path)
    replace_in(
        folder / "deals.csv",
        "12008,Quarry sensors,default,decisionmakerboughtin",
        "12008,Quarry sensors,default,verbalcommit",
    )
    with pytest.raises(ImportRejected) as err:
        import_export(clean_db, folder, allow_rejections=False)
    assert [(r.file, r.row, r.reason) for r in err.value.report.rejected] == [
        (
            "deals.csv",
            9,
            "unknown Deal Stage 'verbalcommit': add it to stages: in config/import_mapping.yaml or --mapping",
        )
    ]
    with clean_db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Deal)) == 0

    extra = ImportMapping.model_validate({"stages": {"VerbalCommit": "negotiation"}})
    report = import_export(
        clean_db, folder, allow_rejections=False, mapping=load_import_mapping().merged(extra)
    )
    assert report.rejected == [] and report.deals == 12
    with clean_db.connect() as conn:
        assert conn.scalar(select(Deal.stage).where(Deal.external_id == "12008")) == "negotiation"


def test_unknown_account_id_is_rejected(clean_db: Engine, tmp_path: Path) -> None:
    folder = copy_export(SALESFORCE, tmp_path)
    replace_in(
        folder / "Opportunity.csv",
        "006A09,Wingtip - Training,001A000006",
        "006A09,Wingtip - Training,001A000099",
    )
    report = import_export(clean_db, folder)
    assert [(r.file, r.row) for r in report.rejected] == [("Opportunity.csv", 10)]
    assert "AccountId '001A000099' is the id of no record of the export" in report.rejected[0].reason
    assert report.deals == 13


def test_undetectable_column_names_the_file_and_works_with_mapping(
    cli: typer.Typer, clean_db: Engine, tmp_path: Path
) -> None:
    folder = copy_export(HUBSPOT, tmp_path)
    replace_in(
        folder / "deals.csv",
        "Record ID,Deal Name,Pipeline,Deal Stage,",
        "Record ID,Deal Name,Pipeline,Phase,",
    )
    with pytest.raises(ImportFileError) as err:
        import_export(clean_db, folder)
    assert (err.value.file, err.value.row) == ("deals.csv", 1)
    assert "missing column(s) for deals field(s) stage" in err.value.reason
    assert "headers seen: Record ID, Deal Name, Pipeline, Phase," in err.value.reason
    assert "--mapping" in err.value.reason

    runner = CliRunner()
    failed = runner.invoke(cli, ["import", str(folder)])
    assert failed.exit_code == 2
    assert "deals.csv" in failed.stderr and "--mapping" in " ".join(failed.stderr.split())

    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("columns:\n  deals:\n    stage: [Phase]\n", encoding="utf-8")
    done = runner.invoke(cli, ["import", str(folder), "--mapping", str(mapping), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["deals"] == 12
    assert pipeline_summary(clean_db) == (HUBSPOT_STAGES, HUBSPOT_WON)


def test_roles_override_decides_what_headers_cannot(clean_db: Engine, tmp_path: Path) -> None:
    folder = copy_export(HUBSPOT, tmp_path)
    # "Region" fits an account's location and a rep's office equally; the name gives no hint
    (folder / "extra.csv").write_text("Name,Region\nMaya Lindqvist,North\n", encoding="utf-8")
    with pytest.raises(ImportFileError) as err:
        import_export(clean_db, folder)
    assert err.value.file == "extra.csv"
    assert "accounts or a sales_reps file" in err.value.reason and "roles:" in err.value.reason

    pinned = ImportMapping.model_validate({"roles": {"extra.csv": "sales_reps"}})
    report = import_export(clean_db, folder, mapping=load_import_mapping().merged(pinned))
    # a reps file now exists, so owner names are no longer taken as reps: only Maya's deals
    # (12001, 12006, 12007, 12010) are imported, Tom's and Priya's are rejected
    assert report.sales_reps == 1 and report.deals == 4
    assert {r.row for r in report.rejected} == {3, 4, 5, 6, 9, 10, 12, 13}
    assert report.rejected[0].reason == "unknown Deal owner 'Tom Okoro'"

    ignored = ImportMapping.model_validate({"roles": {"extra.csv": "ignore"}})
    again = import_export(clean_db, folder, mapping=load_import_mapping().merged(ignored))
    assert again.rejected == [] and again.deals == 12


def test_mapping_merge_and_validation(tmp_path: Path) -> None:
    base = load_import_mapping()
    # an override's synonym is tried first and leaves the field that had it before
    over = ImportMapping.model_validate({"columns": {"accounts": {"sector": ["Region"]}}})
    merged = base.merged(over)
    assert merged.columns.accounts.sector[0] == "Region"
    assert "Region" not in merged.columns.accounts.location
    assert base.columns.accounts.location == load_import_mapping().columns.accounts.location  # cache intact
    with pytest.raises(ValueError, match="listed for both"):
        ImportMapping.model_validate({"columns": {"deals": {"stage": ["Phase"], "value": ["phase"]}}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  verbal commit: nowhere\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown pipeline stages"):
        read_import_mapping(bad)


def test_bad_mapping_file_exits_2(cli: typer.Typer, clean_db: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("roles:\n  deals.csv: invoices\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["import", str(HUBSPOT), "--mapping", str(bad)])
    assert result.exit_code == 2
    assert "bad --mapping file" in result.stderr
