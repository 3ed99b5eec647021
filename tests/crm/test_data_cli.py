"""`flowstate import` / `seed-demo` / `reembed` against the test database (DATABASE_URL)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from app.commands import data
from config.settings import get_settings
from crm.models import Deal
from tests.conftest import MAVEN_DIR


@pytest.fixture
def cli(clean_db: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    app = typer.Typer()
    data.register(app)
    yield app
    get_settings.cache_clear()


def deals(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Deal)) or 0


def test_import_json_then_noop(cli: typer.Typer, clean_db: Engine) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["import", str(MAVEN_DIR), "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["deals"], report["created"]["deals"], report["rejected"]) == (8800, 8800, [])
    assert {(r["from"], r["to"]) for r in report["repaired"]} == {
        ("GTXPro", "GTX Pro"),
        ("technolgy", "technology"),
    }

    again = runner.invoke(cli, ["import", str(MAVEN_DIR)])
    assert again.exit_code == 0, again.output
    assert "already up to date" in again.stdout
    assert deals(clean_db) == 8800


def test_import_exit_codes(cli: typer.Typer, clean_db: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    shutil.copytree(MAVEN_DIR, folder)
    pipeline = folder / "sales_pipeline.csv"
    lines = pipeline.read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4].replace(lines[4].split(",")[1], "Nobody Known", 1)
    pipeline.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()

    rejected = runner.invoke(cli, ["import", str(folder)])
    assert rejected.exit_code == 1
    assert "sales_pipeline.csv, row 5: unknown sales_agent 'Nobody Known'" in rejected.stdout
    assert deals(clean_db) == 0

    allowed = runner.invoke(cli, ["import", str(folder), "--allow-rejections"])
    assert allowed.exit_code == 0, allowed.output
    assert deals(clean_db) == 8799

    (folder / "accounts.csv").write_bytes("account,sector\nCaf\u00e9,retail\n".encode("latin-1"))
    broken = runner.invoke(cli, ["import", str(folder)])
    assert broken.exit_code == 2
    assert "accounts.csv" in broken.stderr and "nothing was written" in broken.stderr
    assert deals(clean_db) == 8799


def test_seed_demo_and_reembed(cli: typer.Typer, clean_db: Engine) -> None:
    runner = CliRunner()
    seeded = runner.invoke(cli, ["seed-demo", "--seed", "3"])
    assert seeded.exit_code == 0, seeded.output
    assert "300 deals" in seeded.stdout
    with clean_db.begin() as conn:
        # keep 5 of the 50 notes: re-embedding them all would only cost time
        conn.execute(text("DELETE FROM documents WHERE id > 5"))
        conn.execute(text("UPDATE documents SET embedding = NULL, embedding_model = 'old'"))
    redone = runner.invoke(cli, ["reembed"])
    assert redone.exit_code == 0, redone.output
    assert "re-embedded 5 document(s)" in redone.stdout
    with clean_db.connect() as conn:
        assert (
            conn.scalar(
                text("SELECT count(*) FROM documents WHERE embedding IS NULL OR embedding_model = 'old'")
            )
            == 0
        )
    refused = runner.invoke(cli, ["seed-demo"])
    assert refused.exit_code == 0 and "already has data" in refused.stdout
