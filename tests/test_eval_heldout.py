"""The held-out evaluation sets (eval/*_heldout.jsonl) are exactly what eval/build_heldout.py makes
of the Maven CRM data, and have the size and shape they promise (see eval/README.md).

The data lives in ../shared/data/maven-crm, which CI always has.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import MAVEN_DIR

EVAL = Path(__file__).resolve().parents[1] / "eval"
FILES = (
    "questions_heldout.jsonl",
    "intents_heldout.jsonl",
    "multiturn_heldout.jsonl",
    "actions_heldout.jsonl",
)
FAMILIES = {
    "accounts",
    "products",
    "team",
    "deal_filters",
    "aggregates",
    "rankings",
    "comparisons",
    "periods",
    "combinations",
}
INTENTS = {"discovery", "closing", "delivery", "pipeline", "nba", "general"}
ACTION_KINDS = {"move_stage", "create_reminder", "create_task", "queue_email", "accept_discount", "clarify"}
ANSWER_KINDS = {"number", "percent", "text", "set"}


def _builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_heldout", EVAL / "build_heldout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (EVAL / name).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("heldout")
    _builder().build(MAVEN_DIR, out)
    return out


@pytest.mark.parametrize("name", FILES)
def test_committed_file_is_what_the_script_writes(built: Path, name: str) -> None:
    assert (EVAL / name).read_bytes() == (built / name).read_bytes(), (
        f"eval/{name} differs from what eval/build_heldout.py produces: the sets are frozen, "
        "never edit them by hand"
    )


def _check_answer(item: dict[str, Any]) -> None:
    assert item["kind"] in ANSWER_KINDS
    if item["kind"] in ("number", "percent"):
        assert isinstance(item["answer"], int | float) and not isinstance(item["answer"], bool)
        tolerance = item["tolerance"]
        assert isinstance(tolerance, int | float) and not isinstance(tolerance, bool) and tolerance >= 0
    else:
        assert item["answer"] and all(isinstance(a, str) and a for a in item["answer"])
    assert item["message"].strip()


def test_questions() -> None:
    lines = _lines("questions_heldout.jsonl")
    assert len(lines) >= 120
    assert len({q["id"] for q in lines}) == len(lines)
    per_family = Counter(q["family"] for q in lines)
    assert set(per_family) == FAMILIES
    assert min(per_family.values()) >= 10, per_family
    for q in lines:
        assert q["intent"] == "pipeline"
        _check_answer(q)


def test_intents() -> None:
    lines = _lines("intents_heldout.jsonl")
    assert len(lines) == 40
    assert {i["intent"] for i in lines} == INTENTS
    assert all(i["message"].strip() and i["id"] for i in lines)


def test_conversations() -> None:
    lines = _lines("multiturn_heldout.jsonl")
    assert len(lines) == 20
    for conv in lines:
        assert 2 <= len(conv["turns"]) <= 3
        for item in conv["turns"]:
            _check_answer(item)


def test_actions() -> None:
    lines = _lines("actions_heldout.jsonl")
    assert len(lines) == 30
    kinds = Counter(a["expect"]["kind"] for a in lines)
    assert set(kinds) == ACTION_KINDS
    assert kinds["clarify"] == 3
    for a in lines:
        assert a["message"].strip()
        assert isinstance(a["state"], dict)
        if a["expect"]["kind"] == "clarify":
            assert a["state"] == {}
        else:
            assert a["expect"]["params"] and a["state"]
        assert all(isinstance(m, str) and m for m in a.get("history", []))
