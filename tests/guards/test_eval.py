"""`flowstate eval guards`: the shipped cases meet precision and recall >= 0.9 per validator, and
the command's output, JSON and errors."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from app.commands import evaluate
from guards.evaluation import evaluate as run_eval
from guards.evaluation import load_cases

CASES = Path(__file__).resolve().parents[2] / "eval" / "guards_cases.jsonl"


def test_shipped_cases_meet_the_bar() -> None:
    cases = load_cases(CASES)
    assert len(cases) >= 60
    assert {c.validator for c in cases} == {
        "grounding",
        "privacy",
        "tone",
        "discount_policy",
        "can_spam",
        "schema",
    }
    report = run_eval(cases)
    for name, s in report.per_validator.items():
        assert s.precision >= 0.9 and s.recall >= 0.9, (
            name,
            s.as_dict(),
            [m.case.id for m in report.mistakes],
        )


def _app() -> typer.Typer:
    app = typer.Typer()
    evaluate.register(app)
    return app


def test_cli_json_and_table(tmp_path: Path) -> None:
    f = tmp_path / "cases.jsonl"
    f.write_text(
        '{"defaults": {"max_percent": 20}}\n'
        '{"text": "We can offer 60% off.", "validator": "discount_policy", "expect": "fail"}\n'
        '{"text": "They asked for 60% off; we offer 10%.", "validator": "discount_policy", '
        '"expect": "pass"}\n'
        '{"text": "Call 212-555-0198.", "validator": "privacy", "expect": "pass", "id": "wrong-label"}\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    res = runner.invoke(_app(), ["guards", str(f), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    discount = report["per_validator"]["discount_policy"]
    assert (discount["tp"], discount["tn"], discount["precision"], discount["recall"]) == (1, 1, 1.0, 1.0)
    assert report["overall"]["fp"] == 1
    assert [m["id"] for m in report["mistakes"]] == ["wrong-label"]
    table = runner.invoke(_app(), ["guards", str(f), "--fail-under", "0.9"])
    assert table.exit_code == 1  # privacy precision is 0 on the mislabelled case
    assert "discount_policy" in table.stdout and "wrong-label" in table.stdout


def test_cli_names_the_bad_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(
        '{"text": "x", "validator": "tone", "expect": "pass"}\n'
        '{"text": "x", "validator": "spelling", "expect": "pass"}\n'
    )
    res = CliRunner().invoke(_app(), ["guards", str(f)])
    assert res.exit_code == 2
    assert "bad.jsonl:2" in res.output and "validator" in res.output
    assert CliRunner().invoke(_app(), ["guards", str(tmp_path / "missing.jsonl")]).exit_code == 2
