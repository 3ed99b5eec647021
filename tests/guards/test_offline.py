"""Guardrails stays offline: `~/.guardrailsrc` is written (or repaired) before `guardrails` is
imported, and a process that runs a Guard exits at once (no metrics export retries at exit)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guards._offline import ensure_offline_rc

ROOT = Path(__file__).resolve().parents[2]


def _rc(home: Path) -> dict[str, str]:
    lines = (home / ".guardrailsrc").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_rc_written_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    ensure_offline_rc()
    rc = _rc(tmp_path)
    assert rc["enable_metrics"] == "false"
    assert rc["use_remote_inferencing"] == "false"
    assert rc["token"] == "" and rc["id"]


def test_rc_repaired_keeping_id_and_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".guardrailsrc").write_text(
        "id=abc\ntoken=secret\nenable_metrics=true\nuse_remote_inferencing=true\n", encoding="utf-8"
    )
    ensure_offline_rc()
    assert _rc(tmp_path) == {
        "id": "abc",
        "token": "secret",
        "enable_metrics": "false",
        "use_remote_inferencing": "false",
    }


def test_guard_process_exits_promptly(tmp_path: Path) -> None:
    """A fresh HOME (no rc file): importing `guards` writes it, a Guard runs, and the process ends
    within 3 s of finishing its work (with metrics on, Guardrails retries its exporter ~8 s)."""
    code = (
        "import sys, time\n"
        "import guards\n"
        "from guards.runner import validate_output\n"
        "from contracts import ProposedAction\n"
        "v = validate_output(ProposedAction, {'kind': 'move_stage', 'summary': 'Move it'})\n"
        "assert v.passed, v\n"
        "print(time.time(), flush=True)\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    ended = time.time()
    assert proc.returncode == 0, proc.stderr
    finished = float(proc.stdout.strip().splitlines()[-1])
    assert ended - finished < 3.0, f"exit took {ended - finished:.1f} s"
    assert "enable_metrics=false" in (tmp_path / ".guardrailsrc").read_text(encoding="utf-8")
