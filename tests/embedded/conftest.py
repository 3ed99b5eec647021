"""Fixtures of the embedded-services tests: a stub OpenAI-compatible server and free ports."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def free_port() -> int:
    """A TCP port nothing listens on right now (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StubOpenAI:
    """A tiny OpenAI-compatible server: `GET /v1/models` lists `models`; records the
    Authorization header of every request."""

    base_url: str
    models: list[str]
    auth_headers: list[str | None] = field(default_factory=list)


@pytest.fixture
def stub_openai() -> Iterator[StubOpenAI]:
    stub = StubOpenAI(base_url="", models=["stub-model"])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stub.auth_headers.append(self.headers.get("Authorization"))
            if self.path.rstrip("/") != "/v1/models":
                self.send_error(404)
                return
            body = json.dumps(
                {
                    "object": "list",
                    "data": [{"id": m, "object": "model", "owned_by": "stub"} for m in stub.models],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()
