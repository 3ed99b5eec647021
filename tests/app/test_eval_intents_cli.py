"""`flowstate eval intents`: file checks, report shape (neighbours only: no LLM, no database)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.commands.eval_intents import IntentFileError, load_cases


def _app() -> typer.Typer:
    from app.commands import evaluate

    app = typer.Typer()
    evaluate.register(app)
    return app


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "intents.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("{not json", "not JSON"),
        ('["a list"]', "JSON object"),
        ('{"message": "", "intent": "general"}', '"message"'),
        ('{"message": "hi", "intent": "sales"}', "must be one of"),
    ],
)
def test_bad_lines_name_the_line(tmp_path: Path, line: str, error: str) -> None:
    path = _write(tmp_path, ['{"message": "hello", "intent": "general"}', line])
    with pytest.raises(IntentFileError, match=rf":2: .*{error}"):
        load_cases(path)


def test_cli_exit_code_2_for_a_missing_or_bad_file(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(_app(), ["intents", str(tmp_path / "nope.jsonl"), "--no-llm", "--no-entities"])
    assert missing.exit_code == 2
    bad = _write(tmp_path, ['{"message": "hi", "intent": "sales"}'])
    result = runner.invoke(_app(), ["intents", str(bad), "--no-llm", "--no-entities"])
    assert result.exit_code == 2
    assert "must be one of" in result.output


def test_cli_json_report(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            '{"id": "a", "message": "Hello!", "intent": "general"}',
            '{"id": "b", "message": "Which deals are stuck in prospecting?", "intent": "pipeline"}',
            '{"id": "c", "message": "Write a short poem about the sea", "intent": "closing"}',
        ],
    )
    result = CliRunner().invoke(_app(), ["intents", str(path), "--json", "--no-llm", "--no-entities"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) >= {"n", "accuracy", "confusion", "mistakes", "median_ms"}
    assert report["n"] == 3 and report["llm_calls"] == 0
    assert report["confusion"]["general"]["general"] == 1
    assert report["confusion"]["pipeline"]["pipeline"] == 1
    assert [m["id"] for m in report["mistakes"]] == ["c"]  # a poem is not a closing request
    assert report["accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    failing = CliRunner().invoke(
        _app(), ["intents", str(path), "--no-llm", "--no-entities", "--fail-under", "0.9"]
    )
    assert failing.exit_code == 1
    assert "accuracy" in failing.output
