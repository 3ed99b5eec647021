"""Keep Guardrails AI offline and quiet. Imported by `guards/__init__.py` before anything imports
`guardrails`.

Guardrails reads `~/.guardrailsrc` when it is imported and again each time a `Guard` or `Validator`
is built. Without the file, metrics are on: the first `Guard` call exports OpenTelemetry spans to
Guardrails' hosted collector, which on an offline machine costs about 8 s of retries at exit
(measured). Setting the flag after import does not help, so
this module writes the file the way `guardrails configure --disable-metrics
--disable-remote-inferencing --token ""` does, before the first import.

`GUARDRAILS_RUN_SYNC=true` makes Guardrails run validators sequentially in the calling thread:
its default asynchronous service would install uvloop's event-loop policy process-wide (uvicorn
brings uvloop) and refuses to run inside a running event loop (FastAPI, async graph nodes).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

_OFFLINE_KEYS = {"enable_metrics": "false", "use_remote_inferencing": "false"}


def rc_path() -> Path:
    """The file Guardrails reads: `~/.guardrailsrc` (it uses `os.path.expanduser("~")`)."""
    return Path(os.path.expanduser("~")) / ".guardrailsrc"


def _parse(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def ensure_offline_rc() -> Path:
    """Write (or repair) `~/.guardrailsrc` so metrics and remote inference are off.

    An existing file keeps its id and token; only `enable_metrics`/`use_remote_inferencing` (and the
    legacy `no_metrics`) are forced off. Returns the path. A read-only home is tolerated: the
    caller's Guards then fall back to Guardrails' defaults, which is what the docs warn about.
    """
    path = rc_path()
    try:
        current = _parse(path.read_text(encoding="utf-8")) if path.exists() else {}
    except OSError:
        current = {}
    wanted = dict(current)
    wanted.setdefault("id", str(uuid.uuid4()))
    wanted.setdefault("token", "")
    wanted.pop("no_metrics", None)
    wanted.update(_OFFLINE_KEYS)
    if wanted != current:
        body = "".join(f"{k}={v}\n" for k, v in wanted.items())
        try:
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(body, encoding="utf-8")
            tmp.replace(path)
        except OSError:
            pass
    return path


def apply() -> None:
    """Environment switches plus the rc file; idempotent and cheap (no `guardrails` import)."""
    os.environ.setdefault("GUARDRAILS_RUN_SYNC", "true")
    ensure_offline_rc()


apply()
