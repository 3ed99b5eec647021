"""Embedded SMTP sink: an aiosmtpd server that keeps every message it receives as an `.eml`
file under `<data_dir>/outbox/`, so a rep sees exactly what would have gone out, and nothing
leaves the machine. SMTP_URL points Flowstate at a real server instead.

Files are named by the message's Message-ID: a retried delivery of the same message (same id)
overwrites its own file instead of adding a second one, as a mail server that drops duplicates
by Message-ID would.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def outbox_dir(data_dir: Path) -> Path:
    """Where the sink writes: `<data_dir>/outbox`."""
    return data_dir / "outbox"


def eml_name(message_id: str) -> str:
    """The file name of a message in the sink: sha256 of its Message-ID (angle brackets and
    spaces stripped), 32 hex digits, `.eml`."""
    key = message_id.strip().strip("<>").strip()
    return hashlib.sha256(key.encode()).hexdigest()[:32] + ".eml"


class _Handler:
    """aiosmtpd handler: write each message's raw bytes to `<folder>/<eml_name>`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data: bytes = envelope.original_content or envelope.content
        parsed = message_from_bytes(data, policy=policy.default)
        message_id = str(parsed.get("Message-ID") or hashlib.sha256(data).hexdigest())
        path = self.folder / eml_name(message_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a reader never sees half a message
        return "250 Message accepted for delivery"


@dataclass
class EmbeddedSmtp:
    """A running sink: `url` (smtp://127.0.0.1:port) and the `folder` it writes to."""

    url: str
    folder: Path
    _controller: Any = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the sink's server thread; idempotent."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def start_smtp_sink(data_dir: Path, port: int) -> EmbeddedSmtp:
    """Start the sink on 127.0.0.1:`port` (a thread of this process), or attach to the sink already
    answering there. Raises OSError when the port is taken by something else."""
    from aiosmtpd.controller import Controller

    folder = outbox_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if _answers(port):  # another Flowstate process of this data directory runs the sink
        log.info("SMTP sink already running at 127.0.0.1:%d", port)
        return EmbeddedSmtp(url=f"smtp://127.0.0.1:{port}", folder=folder)
    controller = Controller(_Handler(folder), hostname="127.0.0.1", port=port)
    controller.start()
    log.info("embedded SMTP sink at 127.0.0.1:%d writing to %s", port, folder)
    return EmbeddedSmtp(url=f"smtp://127.0.0.1:{port}", folder=folder, _controller=controller)


def _answers(port: int) -> bool:
    """Whether an SMTP server answers on 127.0.0.1:`port` (a NOOP within a second)."""
    import smtplib

    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=1.0) as client:
            return client.noop()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


def sink_messages(folder: Path) -> list[Path]:
    """The `.eml` files the sink has written, oldest first."""
    if not folder.exists():
        return []
    return sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime)
