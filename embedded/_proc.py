"""Child-process options shared by the embedded servers we launch ourselves."""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    import ctypes

    with contextlib.suppress(Exception):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def child_options(*, die_with_thread: bool = False) -> dict[str, Any]:
    """`subprocess.Popen` keyword arguments for a server owned by this process.

    - `start_new_session`: a Ctrl-C in the terminal reaches only Flowstate, which stops its
      servers itself after the API has drained its requests.
    - On Linux, from the main thread: the kernel sends the server SIGTERM if this process dies
      (even by SIGKILL), so a crash leaves no orphan holding the port and the memory. Not from other
      threads: PR_SET_PDEATHSIG fires when the *thread* that forked exits, unless the caller says
      (`die_with_thread`) that its thread lives exactly as long as the child should (a
      supervisor's thread).
    """
    preexec: Callable[[], None] | None = None
    tied = die_with_thread or threading.current_thread() is threading.main_thread()
    if sys.platform == "linux" and tied:
        preexec = _die_with_parent
    return {"start_new_session": True, "preexec_fn": preexec}


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 10.0, name: str = "a server") -> None:
    """Stop `proc`: SIGTERM, then SIGKILL when it has not exited after `timeout_s` seconds.
    Returns once it has exited; a no-op for a process that already has."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop in %.0f s; killing it", name, timeout_s)
        proc.kill()
        proc.wait(timeout=5)
