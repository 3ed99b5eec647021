"""SMTP delivery of one outbox message (stdlib `smtplib`), for the delivery activity.

SMTP_URL forms: `smtp://host:port` (plain, as the embedded sink), `smtp://user:pass@host:587?
starttls=true` (submission with STARTTLS), `smtps://user:pass@host:465` (implicit TLS).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, urlsplit

#: Seconds one SMTP conversation may take.
SMTP_TIMEOUT_S = 30.0


class Undeliverable(Exception):
    """The message can never be delivered as it is (no address, refused recipient): retrying does
    not help. The delivery workflow reports it at once."""


def build_message(*, message_id: str, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """An RFC 5322 message with the outbox's Message-ID (the same on every attempt)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id
    msg.set_content(body)
    return msg


def send(smtp_url: str, msg: EmailMessage) -> None:
    """Deliver `msg` through the server of `smtp_url`. Raises Undeliverable when every recipient
    is refused (5xx), smtplib.SMTPException / OSError for what a retry may fix."""
    parts = urlsplit(smtp_url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, not {parts.scheme}://")
    host = parts.hostname or "127.0.0.1"
    starttls = parse_qs(parts.query).get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
    context = ssl.create_default_context()
    server: smtplib.SMTP
    if parts.scheme == "smtps":
        server = smtplib.SMTP_SSL(host, parts.port or 465, timeout=SMTP_TIMEOUT_S, context=context)
    else:
        server = smtplib.SMTP(host, parts.port or 25, timeout=SMTP_TIMEOUT_S)
    with server:
        if starttls:
            server.starttls(context=context)
        if parts.username:
            server.login(unquote(parts.username), unquote(parts.password or ""))
        try:
            server.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise Undeliverable(f"recipient refused: {exc.recipients}") from exc
