"""Supervision of an embedded server process: a crash is detected, recorded with its cause, and
the server is started again with exponential backoff.

The record is a small JSON file (`<data_dir>/<name>.state.json`) rather than process memory so
that whoever asks (`GET /health` in any app worker, `flowstate doctor` in another process) reads
the same facts: the server's state, how often it was restarted, and how it last ended (exit
code or signal, and the last lines of its log).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from embedded._proc import stop_process

log = logging.getLogger(__name__)

#: Seconds a server must stay up for its next crash to count as a fresh one (restarted at once)
#: rather than one more of a crash loop (restarted after a growing delay).
HEALTHY_AFTER_S = 60.0
#: Backoff between restarts of a crash loop: 1, 2, 4, ... seconds, at most 60 (tenacity's
#: `wait_exponential(multiplier=1, min=1, max=60)`).
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
#: Lines of the server's log kept with an exit.
LOG_TAIL_LINES = 20


class ServerExit(BaseModel):
    """How a server process ended: `code` is its exit status when it exited, `signal` the name of
    the signal that killed it (e.g. "SIGILL"), `at` when it was seen, `log_tail` the last lines
    of its log."""

    code: int | None = None
    signal: str | None = None
    reason: str | None = None
    at: datetime
    log_tail: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, returncode: int, log_path: Path | None) -> ServerExit:
        """From a `Popen.returncode` (negative: killed by that signal number) and its log."""
        sig: str | None = None
        code: int | None = returncode
        if returncode < 0:
            code = None
            try:
                sig = signal.Signals(-returncode).name
            except ValueError:
                sig = f"signal {-returncode}"
        return cls(code=code, signal=sig, at=datetime.now(UTC), log_tail=log_tail(log_path))

    @property
    def ended(self) -> str:
        """How the process ended, to follow "the server": `was killed by SIGILL (signal 4)`,
        `exited with code 1` or `did not start: <reason>`."""
        return f"was {self.describe()}" if self.signal is not None else self.describe()

    def describe(self) -> str:
        """`killed by SIGILL (signal 4)`, `exited with code 1` or, for a start that failed
        without an exit, `did not start: <reason>`."""
        if self.signal is not None:
            number = getattr(signal.Signals, self.signal, None)
            return f"killed by {self.signal}" + (f" (signal {int(number)})" if number is not None else "")
        if self.code is not None:
            return f"exited with code {self.code}"
        return f"did not start: {self.reason or 'unknown reason'}"


class ServerState(BaseModel):
    """What the supervisor last wrote about its server.

    `status`: "running" (up, answering when it was started), "restarting" (it ended and a new one
    is being started, the next attempt at `next_attempt_at`), "stopped" (stopped on purpose).
    `restarts` counts restarts since the supervisor started; `last_exit` is the last crash."""

    status: Literal["running", "restarting", "stopped"]
    pid: int | None = None
    restarts: int = 0
    last_exit: ServerExit | None = None
    next_attempt_at: datetime | None = None
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def read(cls, path: Path) -> ServerState | None:
        """The state in `path`, or None when there is none or it is unreadable."""
        try:
            return cls.model_validate_json(path.read_text())
        except (OSError, ValidationError):
            return None

    def write(self, path: Path) -> None:
        """Replace `path` atomically (readers never see half a file)."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.model_dump_json())
        os.replace(tmp, path)


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last `lines` non-empty lines of the log at `path` ([] when there is none)."""
    if path is None:
        return []
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16_384))
            text = fh.read().decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


class _Crashed(Exception):
    """The server ended (or failed to start) soon after it was started."""


class Supervisor:
    """Watch a server process in a thread and restart it when it ends unexpectedly.

    `spawn()` starts a new process and returns it once it answers; it raises (any exception) when
    the server does not come up, which counts as a crash. `proc` is the process already running.
    A crash within HEALTHY_AFTER_S of a start waits an exponential backoff (BACKOFF_MIN_S,
    doubling, at most BACKOFF_MAX_S) before the next start; a crash after a longer healthy run is
    restarted at once. Every change is written to `state_path` (see ServerState).
    """

    def __init__(
        self,
        name: str,
        proc: subprocess.Popen[bytes],
        spawn: Callable[[], subprocess.Popen[bytes]],
        *,
        state_path: Path,
        log_path: Path | None = None,
        healthy_after_s: float = HEALTHY_AFTER_S,
        backoff_min_s: float = BACKOFF_MIN_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = proc
        self._spawn = spawn
        self.state_path = state_path
        self.log_path = log_path
        self.healthy_after_s = healthy_after_s
        self._wait = wait_exponential(multiplier=backoff_min_s, min=backoff_min_s, max=backoff_max_s)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.state = ServerState(status="running", pid=proc.pid)
        self.state.write(state_path)
        self._thread = threading.Thread(target=self._watch, name=f"supervise-{name}", daemon=True)

    def start(self) -> Supervisor:
        """Start watching; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop watching and stop the server: SIGTERM, SIGKILL after `timeout_s`. Idempotent."""
        self._stopping.set()
        with self._lock:
            proc = self.proc
        if proc is not None:
            stop_process(proc, timeout_s=timeout_s, name=self.name)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout_s)
        self._record(status="stopped", pid=None, next_attempt_at=None)

    # ---------------------------------------------------------------- internals

    def _record(self, **changes: object) -> None:
        self.state = self.state.model_copy(update={**changes, "updated_at": datetime.now(UTC)})
        with contextlib.suppress(OSError):
            self.state.write(self.state_path)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            retrying = Retrying(
                retry=retry_if_exception_type(_Crashed),
                wait=self._wait,
                stop=lambda _state: self._stopping.is_set(),
                sleep=self._sleep,
                before_sleep=self._announce,
                reraise=True,
            )
            with contextlib.suppress(_Crashed):  # raised only when stopping
                for attempt in retrying:
                    with attempt:
                        self._run_once()

    def _sleep(self, seconds: float) -> None:
        # wakes at once when stop() is called, unlike time.sleep
        self._stopping.wait(seconds)

    def _announce(self, retry_state: RetryCallState) -> None:
        delay = retry_state.upcoming_sleep
        when = datetime.fromtimestamp(time.time() + delay, UTC)
        self._record(status="restarting", pid=None, next_attempt_at=when)
        log.warning("%s: next start in %.0f s", self.name, delay)

    def _run_once(self) -> None:
        """Run the server until it ends. Returns after a healthy run (the caller restarts it at
        once with a fresh backoff); raises _Crashed after a short one."""
        with self._lock:
            proc = self.proc
        if proc is None:
            if self._stopping.is_set():
                return
            self._record(restarts=self.state.restarts + 1)
            try:
                proc = self._spawn()
            except Exception as exc:
                reason = " ".join(str(exc).split())[:300]
                log.warning("%s did not start again: %s", self.name, reason)
                returncode = getattr(exc, "returncode", None)
                exit_ = (
                    ServerExit.of(returncode, self.log_path)
                    if isinstance(returncode, int)
                    else ServerExit(reason=reason, at=datetime.now(UTC), log_tail=log_tail(self.log_path))
                )
                self._record(last_exit=exit_, pid=None)
                raise _Crashed from exc
            with self._lock:
                if self._stopping.is_set():
                    proc.terminate()
                    return
                self.proc = proc
            self._record(status="running", pid=proc.pid, next_attempt_at=None)
            log.info("%s is running again (pid %d)", self.name, proc.pid)
        started = time.monotonic()
        returncode = proc.wait()
        if self._stopping.is_set():
            return
        with self._lock:
            self.proc = None
        exit_ = ServerExit.of(returncode, self.log_path)
        self._record(status="restarting", pid=None, last_exit=exit_)
        log.error("%s %s; last log lines:\n%s", self.name, exit_.describe(), "\n".join(exit_.log_tail[-5:]))
        if time.monotonic() - started < self.healthy_after_s:
            raise _Crashed(exit_.describe())
