"""`flowstate eval questions`: scoring rules (as shared/tools/ask.py), file errors, and a run
against a real server with fake crews."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.cli import eval_cli
from app.commands import evaluate
from app.commands.eval_questions import QuestionFileError, is_right, load_questions, numbers, summarize
from app.main import create_app
from tests.app.test_chat_api import _endpoints, _serve, _with_fake_chat
from tests.graphs.fakes import fake_context


def _register() -> None:
    if "questions" not in {c.name for c in eval_cli.registered_commands}:
        evaluate.register(eval_cli)


def test_numbers_and_scoring_follow_ask_py() -> None:
    assert numbers("won 1,234 deals, 63.2% of 5 and -3") == [1234.0, 63.2, 5.0, -3.0]
    assert is_right({"kind": "number", "answer": 209, "tolerance": 0}, "Kary won 209 deals")
    assert not is_right({"kind": "number", "answer": 209, "tolerance": 0}, "Kary won 210 deals")
    assert is_right({"kind": "number", "answer": 6322.0, "tolerance": 1}, "largest: $6,321.50")
    assert is_right({"kind": "percent", "answer": 63.2, "tolerance": 0.1}, "win rate 63.15%")
    assert is_right({"kind": "text", "answer": ["Melvin Marxen", "MM"]}, "his manager is melvin marxen")
    assert not is_right({"kind": "set", "answer": ["A", "B"]}, "only a")
    assert is_right({"kind": "set", "answer": ["A", "B"]}, "a and b")
    with pytest.raises(ValueError):
        is_right({"kind": "vibes", "answer": 1}, "x")


def test_summary_p95_is_ask_py_index() -> None:
    rows = [
        {
            "right": i % 2 == 0,
            "latency_s": float(i),
            "intent_right": None,
            "error": None,
            "llm_calls": 2,
            "prompt_tokens": 100,
            "completion_tokens": 10,
        }
        for i in range(1, 21)
    ]
    s = summarize(rows)
    assert s["accuracy"] == 0.5 and s["median_s"] == 10.5
    assert s["p95_s"] == 19.0  # sorted(lat)[int(0.95 * 19)] = lat[18]
    assert s["llm_calls_per_turn"] == 2 and s["prompt_tokens_per_turn"] == 100


def test_bad_question_file_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    f.write_text('{"message": "a", "answer": 1, "kind": "number"}\n{"message": "b"}\n')
    with pytest.raises(QuestionFileError, match=r"q.jsonl:2: missing answer, kind"):
        load_questions(f)
    _register()
    result = CliRunner().invoke(eval_cli, ["questions", str(f)])
    assert result.exit_code == 2 and "q.jsonl:2" in result.output


@pytest.fixture
def server(clean_db: Engine, database_url: str, redis_url: str) -> Iterator[str]:
    app = _with_fake_chat(
        create_app(_endpoints(database_url, None)), redis_url, lambda: fake_context(engine=clean_db)
    )
    with _serve(app) as hostport:
        yield hostport


def test_eval_questions_against_a_server(server: str, tmp_path: Path) -> None:
    items: list[dict[str, Any]] = [
        {
            "id": "a",
            "message": "How many deals has Cancity?",
            "answer": ["Cancity"],
            "kind": "text",
            "intent": "pipeline",
        },
        {
            "id": "b",
            "message": "How many deals has Cancity?",
            "answer": 42,
            "kind": "number",
            "tolerance": 0,
            "intent": "nba",
        },
    ]
    f = tmp_path / "q.jsonl"
    f.write_text("".join(json.dumps(i) + "\n" for i in items))
    _register()
    result = CliRunner().invoke(eval_cli, ["questions", str(f), "--json", "--url", f"http://{server}"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (summary["n"], summary["right"], summary["accuracy"], summary["errors"]) == (2, 1, 0.5, 0)
    assert summary["intent_accuracy"] == 0.5
    assert summary["median_s"] is not None and summary["llm_calls_per_turn"] == 0
    assert [r["right"] for r in summary["rows"]] == [True, False]

    result = CliRunner().invoke(
        eval_cli, ["questions", str(f), "--url", f"http://{server}", "--fail-under", "0.9"]
    )
    assert result.exit_code == 1
    assert "accuracy 50.0%" in result.output
