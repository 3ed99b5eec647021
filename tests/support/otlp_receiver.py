"""A local stand-in for a Langfuse server's ingestion endpoints, for tracing tests.

No Langfuse server can run offline on one machine (it needs ClickHouse, S3 and more), but the SDK's
traffic is plain HTTP, so a receiver that decodes it sees exactly what Langfuse would get:

- `POST /api/public/otel/v1/traces`: OTLP/HTTP, an `ExportTraceServiceRequest` protobuf, gzip'd
  by default (`Content-Encoding: gzip`); answered with an empty `ExportTraceServiceResponse`.
  Every span is kept as a :class:`ReceivedSpan` with its attributes decoded to Python values.
- `POST /api/public/scores`: the SDK's score batches (a JSON list of score bodies with
  `traceId`, `name`, `value`, `comment`, `dataType`, ...); answered 202 `{"message": "Accepted"}`
  like Langfuse v3+.
- anything else is recorded in `other` and answered 200 `{}`.

`authorizations` keeps each request's `Authorization` header (Basic base64(public:secret)).

Usage::

    with OTLPReceiver() as rx:
        monkeypatch.setenv("LANGFUSE_BASE_URL", rx.base_url)
        ...  # trace something, then flush the client
        rx.wait_for(lambda r: len(r.spans) >= 3)
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.support.local_http import LocalHTTPServer

TRACES_PATH = "/api/public/otel/v1/traces"
SCORES_PATH = "/api/public/scores"


def decode_any_value(value: AnyValue) -> Any:
    """An OTLP `AnyValue` as a Python value (str, bool, int, float, list, dict, bytes, None)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [decode_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: decode_any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


@dataclass
class ReceivedSpan:
    """One exported span. Ids are lowercase hex (trace 32 chars, span 16); `parent_span_id` is
    None for a root span. Times are Unix nanoseconds."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    scope: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    start_ns: int
    end_ns: int
    status_code: int = 0
    status_message: str = ""

    @property
    def observation_type(self) -> str | None:
        """Langfuse's `langfuse.observation.type` attribute (span, generation, agent, ...)."""
        value = self.attributes.get("langfuse.observation.type")
        return None if value is None else str(value)

    def json_attr(self, key: str) -> Any:
        """An attribute the Langfuse SDK stores JSON-encoded (usage, cost, input, output...)."""
        value = self.attributes.get(key)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value


@dataclass
class OTLPReceiver(LocalHTTPServer):
    """The receiver (see the module docstring): an HTTP server on a free local port, in a thread."""

    thread_name: ClassVar[str] = "otlp-receiver"

    spans: list[ReceivedSpan] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    other: list[tuple[str, str, bytes]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """What to set as `LANGFUSE_BASE_URL`."""
        return f"http://127.0.0.1:{self.port}"

    # ---------------------------------------------------------------- queries
    def clear(self) -> None:
        with self._lock:
            self.spans.clear()
            self.scores.clear()
            self.other.clear()
            self.authorizations.clear()
            self.errors.clear()

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def wait_for(self, predicate: Callable[[OTLPReceiver], bool], timeout_s: float = 10.0) -> bool:
        """Poll until `predicate(self)` holds (True) or `timeout_s` passes (False)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    def generations(self) -> list[ReceivedSpan]:
        """Spans Langfuse will show as generations."""
        return [s for s in self.snapshot() if s.observation_type == "generation"]

    def trace_ids(self) -> set[str]:
        return {s.trace_id for s in self.snapshot()}

    def by_name(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.snapshot() if s.name == name]

    # ---------------------------------------------------------------- ingestion
    def _ingest_traces(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        received: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            resource = {kv.key: decode_any_value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope.name
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex() or None,
                            name=span.name,
                            scope=scope,
                            attributes={kv.key: decode_any_value(kv.value) for kv in span.attributes},
                            resource=resource,
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            status_code=span.status.code,
                            status_message=span.status.message,
                        )
                    )
        with self._lock:
            self.spans.extend(received)


def _decode_body(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.lower().strip()
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    return raw


class _Handler(BaseHTTPRequestHandler):
    owner: OTLPReceiver
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        # e.g. the SDK's project lookup for trace URLs; nothing a test relies on
        self._reply(200, b'{"data": []}', "application/json")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        owner = self.owner
        with owner._lock:
            owner.authorizations.append(self.headers.get("Authorization", ""))
        path = self.path.split("?", 1)[0]
        try:
            body = _decode_body(raw, self.headers.get("Content-Encoding", ""))
            if path == TRACES_PATH:
                owner._ingest_traces(body)
                self._reply(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")
                return
            if path == SCORES_PATH:
                payload = json.loads(body or b"[]")
                items = payload if isinstance(payload, list) else [payload]
                with owner._lock:
                    owner.scores.extend(items)
                self._reply(202, b'{"message": "Accepted"}', "application/json")
                return
        except Exception as exc:  # a malformed export is a test failure, not a server crash
            with owner._lock:
                owner.errors.append(f"{path}: {type(exc).__name__}: {exc}")
            self._reply(400, b'{"error": "bad request"}', "application/json")
            return
        with owner._lock:
            owner.other.append((self.command, path, body))
        self._reply(200, b"{}", "application/json")


OTLPReceiver.handler = _Handler
