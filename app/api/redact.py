"""Secrets never reach the logs: the values of `token=` and `key=` in logged URLs are redacted.

uvicorn's access log prints each request's path with its query string, and its WebSocket
handshake lines (logger "uvicorn.error") do the same: a chat WebSocket's `?token=` (the API token
of a client that cannot set headers) and a one-time sign-in link's `/login/once?key=` would
otherwise be written to every log file and log shipper. :func:`install_log_redaction` adds
:class:`RedactSecrets` to those loggers; `create_app` calls it, so every worker process has it.
"""

from __future__ import annotations

import logging
import re

#: Query parameters whose values are credentials.
SECRET_PARAMS = ("token", "key")
REDACTED = "[redacted]"

_SECRET_QUERY = re.compile(r"([?&](?:" + "|".join(SECRET_PARAMS) + r")=)[^&#\s\"']*", re.IGNORECASE)

#: The loggers that print request URLs: uvicorn's access log and its WebSocket handshake lines.
URL_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """`text` with the value of every `token=` / `key=` query parameter replaced by "[redacted]"."""
    return _SECRET_QUERY.sub(r"\1" + REDACTED, text)


class RedactSecrets(logging.Filter):
    """A logging filter that redacts secret query values in a record's message and its
    arguments (uvicorn passes the path as an argument of a `%s` format). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install_log_redaction(names: tuple[str, ...] = URL_LOGGERS) -> None:
    """Add :class:`RedactSecrets` to the loggers `names` (once each; calling again is harmless).
    A filter on a logger survives uvicorn's `dictConfig` of its log config, which replaces
    handlers but keeps filters."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
