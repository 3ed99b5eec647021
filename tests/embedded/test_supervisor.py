"""The supervisor of an embedded server: a crash is recorded with its cause and the server is
started again, with a growing delay while it keeps crashing; `/health` shows the cause."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from embedded.health import ComponentStatus, with_supervision
from embedded.supervisor import ServerExit, ServerState, Supervisor


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])


def _wait_for(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Supervisor]:
    log = tmp_path / "server.log"
    log.write_text("loading model\nserving on port 1\n")
    sup = Supervisor(
        "test server",
        _sleeper(),
        _sleeper,
        state_path=tmp_path / "server.state.json",
        log_path=log,
        backoff_min_s=0.2,
        backoff_max_s=1.0,
    ).start()
    yield sup
    sup.stop(timeout_s=5)


def test_a_killed_server_is_recorded_with_its_signal_and_started_again(supervised: Supervisor) -> None:
    first = supervised.proc
    assert first is not None
    first.send_signal(signal.SIGILL)

    def restarted() -> bool:
        state = ServerState.read(supervised.state_path)
        return state is not None and state.status == "running" and state.pid not in (None, first.pid)

    _wait_for(restarted)
    state = ServerState.read(supervised.state_path)
    assert state is not None
    assert state.restarts == 1
    assert state.last_exit is not None
    assert state.last_exit.signal == "SIGILL"
    assert state.last_exit.describe() == "killed by SIGILL (signal 4)"
    assert state.last_exit.log_tail == ["loading model", "serving on port 1"]
    assert supervised.proc is not None and supervised.proc.poll() is None


def test_stop_stops_the_server_and_records_it(supervised: Supervisor) -> None:
    proc = supervised.proc
    assert proc is not None
    supervised.stop(timeout_s=5)
    assert proc.poll() is not None
    state = ServerState.read(supervised.state_path)
    assert state is not None and state.status == "stopped" and state.restarts == 0


def test_a_server_that_keeps_failing_is_retried_with_a_growing_delay(tmp_path: Path) -> None:
    attempts: list[float] = []

    class StartFailed(RuntimeError):
        returncode = -int(signal.SIGILL)

    def failing_spawn() -> subprocess.Popen[bytes]:
        attempts.append(time.monotonic())
        raise StartFailed("the server exited during start-up")

    crashing = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    sup = Supervisor(
        "failing server",
        crashing,
        failing_spawn,
        state_path=tmp_path / "state.json",
        backoff_min_s=0.1,
        backoff_max_s=0.4,
    ).start()
    try:
        _wait_for(lambda: len(attempts) >= 4)
        state = ServerState.read(tmp_path / "state.json")
        assert state is not None and state.status == "restarting"
        assert state.next_attempt_at is not None
        assert state.last_exit is not None and state.last_exit.signal == "SIGILL"
    finally:
        sup.stop(timeout_s=5)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    # 0.2 s then 0.4 s (doubling, capped at backoff_max_s), never a hot loop
    assert all(gap >= 0.15 for gap in gaps), gaps
    assert gaps[-1] >= 0.35, gaps
    first_exit = ServerExit.of(3, None)
    assert first_exit.describe() == "exited with code 3"


def _llm_status(ok: bool, detail: str = "http://127.0.0.1:1/v1") -> ComponentStatus:
    return ComponentStatus(name="llm", mode="embedded", ok=ok, detail=detail, latency_ms=1.0)


def test_health_shows_the_cause_while_the_server_restarts() -> None:
    crash = ServerExit(signal="SIGILL", at=datetime.now(UTC), log_tail=["llama_model_load: ok", "tilezero"])
    next_at = datetime.now(UTC) + timedelta(seconds=4)
    state = ServerState(status="restarting", restarts=2, last_exit=crash, next_attempt_at=next_at)
    status = with_supervision(_llm_status(ok=True), state)
    assert status.ok is False
    assert "killed by SIGILL (signal 4)" in status.detail
    assert "restart 2" in status.detail and "next start in" in status.detail
    assert "tilezero" in status.detail
    assert status.last_exit == crash and status.restarts == 2


def test_health_notes_past_crashes_of_a_server_that_answers_again() -> None:
    crash = ServerExit(code=1, at=datetime.now(UTC))
    state = ServerState(status="running", restarts=1, last_exit=crash)
    status = with_supervision(_llm_status(ok=True), state)
    assert status.ok is True
    assert status.detail.startswith("http://127.0.0.1:1/v1; restarted 1 time; last crash: exited with code 1")
    unchanged = _llm_status(ok=True)
    assert with_supervision(unchanged, ServerState(status="running")) == unchanged
    assert with_supervision(unchanged, None) == unchanged
