"""Evaluate the validators on labelled cases (`flowstate eval guards FILE`).

The file is JSONL, one case a line::

    {"text": "...", "validator": "discount_policy", "expect": "pass" | "fail", "context": {...}, "id": "d01"}

`context` becomes the validator's metadata: `known_names` (list of names), `facts` (tool results),
`message`, `allowed_pii`, `is_email`, `list_price`, `max_percent`, `allowed_numbers`,
`ignore_phrases`, and for `schema` cases `model` ("module:Class" of a pydantic model). A line
`{"defaults": {...}}` sets context keys for the lines after it (a case's own keys win), so a file
can name the CRM once. The positive class is "fail": precision is the share of flagged cases that
should fail, recall the share of failing cases that were flagged.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from guards.config import ValidatorName, load_guards_config


class GuardCase(BaseModel):
    """One labelled case."""

    text: str
    validator: ValidatorName
    expect: Literal["pass", "fail"]
    context: dict[str, Any] = {}
    id: str | None = None
    note: str | None = None


class CaseResult(BaseModel):
    """A case with what the validator said."""

    case: GuardCase
    predicted: Literal["pass", "fail"]
    message: str = ""

    @property
    def correct(self) -> bool:
        return self.predicted == self.case.expect


class Scores(BaseModel):
    """Confusion counts and precision/recall with "fail" as the positive class. With no
    predicted (or no actual) failures precision (recall) is 1.0: nothing was wrongly flagged
    (missed)."""

    cases: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.cases if self.cases else 1.0

    def add(self, r: CaseResult) -> None:
        self.cases += 1
        fail, said_fail = r.case.expect == "fail", r.predicted == "fail"
        if fail and said_fail:
            self.tp += 1
        elif said_fail:
            self.fp += 1
        elif fail:
            self.fn += 1
        else:
            self.tn += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.model_dump(),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "accuracy": round(self.accuracy, 4),
        }


class EvalReport(BaseModel):
    """Scores per validator and overall, and the mistakes."""

    per_validator: dict[str, Scores]
    overall: Scores
    mistakes: list[CaseResult]

    def as_dict(self) -> dict[str, Any]:
        return {
            "per_validator": {k: v.as_dict() for k, v in self.per_validator.items()},
            "overall": self.overall.as_dict(),
            "mistakes": [
                {
                    "id": m.case.id,
                    "validator": m.case.validator,
                    "expect": m.case.expect,
                    "predicted": m.predicted,
                    "text": m.case.text,
                    "message": m.message,
                }
                for m in self.mistakes
            ],
        }


class CaseFileError(ValueError):
    """A malformed line in a cases file (names the line and the reason)."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


def load_cases(path: Path) -> list[GuardCase]:
    """The cases of a JSONL file (blank lines and lines starting with // are skipped).
    Raises CaseFileError naming the line of a malformed case."""
    cases: list[GuardCase] = []
    defaults: dict[str, Any] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CaseFileError(path, n, f"not JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise CaseFileError(path, n, "expected a JSON object")
        if "defaults" in obj:
            defaults = {**defaults, **dict(obj["defaults"])}
            continue
        obj["context"] = {**defaults, **(obj.get("context") or {})}
        obj.setdefault("id", f"line{n}")
        try:
            cases.append(GuardCase.model_validate(obj))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise CaseFileError(path, n, f"{field}: {first['msg']}") from exc
    return cases


def _model(spec: Any) -> Any:
    if isinstance(spec, str):
        module, _, attr = spec.partition(":")
        return getattr(importlib.import_module(module), attr)
    return spec


def case_metadata(context: dict[str, Any]) -> dict[str, Any]:
    """A case's context as validator metadata (the `model` spec imported)."""
    meta = dict(context)
    if "model" in meta:
        meta["model"] = _model(meta["model"])
    return meta


def run_case(case: GuardCase) -> CaseResult:
    """Run the case's validator (configured as in config/guards.yaml) on its text."""
    from guardrails.validators import PassResult

    from guards.runner import validators_for

    validator = validators_for(load_guards_config())[case.validator]
    result = validator.validate(case.text, case_metadata(case.context))
    if isinstance(result, PassResult):
        return CaseResult(case=case, predicted="pass")
    return CaseResult(case=case, predicted="fail", message=str(getattr(result, "error_message", "")))


def evaluate(cases: Iterable[GuardCase]) -> EvalReport:
    """Run every case; scores per validator (in first-seen order) and overall."""
    per: dict[str, Scores] = {}
    overall = Scores()
    mistakes: list[CaseResult] = []
    for case in cases:
        r = run_case(case)
        per.setdefault(case.validator, Scores()).add(r)
        overall.add(r)
        if not r.correct:
            mistakes.append(r)
    return EvalReport(per_validator=per, overall=overall, mistakes=mistakes)


def format_table(report: EvalReport) -> str:
    """The report as a fixed-width table followed by the mistakes."""
    head = (
        f"{'validator':<16} {'cases':>5} {'TP':>4} {'FP':>4} {'FN':>4} {'TN':>4} "
        f"{'precision':>9} {'recall':>7}"
    )
    rows = [head, "-" * len(head)]

    def row(name: str, s: Scores) -> str:
        return (
            f"{name:<16} {s.cases:>5} {s.tp:>4} {s.fp:>4} {s.fn:>4} {s.tn:>4} "
            f"{s.precision:>9.3f} {s.recall:>7.3f}"
        )

    rows += [row(k, v) for k, v in report.per_validator.items()]
    rows += ["-" * len(head), row("overall", report.overall)]
    if report.mistakes:
        rows += ["", f"Mistakes ({len(report.mistakes)}):"]
        for m in report.mistakes:
            text = m.case.text.replace("\n", " / ")
            rows.append(
                f"- [{m.case.id}] {m.case.validator}: expected {m.case.expect}, got {m.predicted}: "
                f"{text[:140]}" + (f"  ({m.message[:120]})" if m.message else "")
            )
    else:
        rows += ["", "No mistakes."]
    return "\n".join(rows)


def below(report: EvalReport, threshold: float) -> Sequence[str]:
    """Validators whose precision or recall is under `threshold`."""
    return [k for k, s in report.per_validator.items() if s.precision < threshold or s.recall < threshold]
