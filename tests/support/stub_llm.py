"""A stub OpenAI-compatible chat server for tests: scripted answers, counted requests.

It speaks the part of the OpenAI API that Flowstate's clients use (`ChatOpenAI` and CrewAI's
native OpenAI provider both post to `{base_url}/chat/completions`):

- `POST /v1/chat/completions`, non-streaming (one JSON body with `usage`) and streaming
  (`text/event-stream` chunks, then `data: [DONE]`; a final usage chunk when the request sets
  `stream_options.include_usage`, as OpenAI does);
- `GET /v1/models`.

Answers come from a script: a list of strings (served in order, the last one repeats) or a
function of the request body returning a string. With no script, a request that asks for JSON
(`response_format` of type `json_object` with a `schema`, or `json_schema`) gets a minimal instance
of that schema, any other request gets `DEFAULT_ANSWER`. Every request body is kept in
`requests` (`count` is their number), and every answer with its `usage` in `responses`, so a
test can assert how many calls were made, what they carried and what the server reported.
`fail_next(n, status)` answers the next requests with an error.

Usage numbers are deterministic: `prompt_tokens` = 1 + characters of all message contents // 4,
`completion_tokens` = 1 + characters of the answer // 4 (about 4 characters per token, the usual
rule of thumb for English; exact values do not matter, only that they are known and non-zero).

Usage::

    with StubLLM(answers=["Hello!"]) as llm:
        ChatOpenAI(base_url=llm.base_url, api_key="x", model=llm.model).invoke("hi")
        assert llm.count == 1
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.local_http import LocalHTTPServer

DEFAULT_MODEL = "stub-model"
DEFAULT_ANSWER = "This is a stub answer."

Script = Sequence[str] | Callable[[dict[str, Any]], str]


def estimate_tokens(text: str) -> int:
    """The stub's token count for `text`: 1 + len(text) // 4."""
    return 1 + len(text) // 4


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts: [{"type": "text", "text": ...}, ...]
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


def prompt_tokens_of(body: dict[str, Any]) -> int:
    """The stub's `prompt_tokens` for a chat request body."""
    return estimate_tokens("".join(_content_text(m.get("content")) for m in body.get("messages", [])))


def example_from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """A minimal value valid for a JSON schema (pydantic's `model_json_schema()` output):
    `default` or the first `enum`/`const` value when given, `$ref` into `$defs`, the first branch
    of `anyOf`/`oneOf`, every property of an object (required or not), one item of an array
    with `minItems` > 0, else an empty array; strings "x", numbers 0, booleans false."""
    root = schema if root is None else root
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        return example_from_schema(target, root)
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            branches = [b for b in schema[key] if b.get("type") != "null"] or schema[key]
            return example_from_schema(branches[0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {name: example_from_schema(sub, root) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        items = schema.get("items", {})
        return [example_from_schema(items, root)] * int(schema.get("minItems", 0) or 0)
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 1) or 1))
    if kind == "integer":
        return int(schema.get("minimum", 0) or 0)
    if kind == "number":
        return float(schema.get("minimum", 0) or 0)
    if kind == "boolean":
        return False
    return None


def requested_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request asks its answer to follow (llama.cpp's `json_object` + `schema`
    or OpenAI's `json_schema`), or None."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    schema: Any = None
    if fmt.get("type") == "json_object":
        schema = fmt.get("schema")
    elif fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
    return schema if isinstance(schema, dict) else None


class StubLLM(LocalHTTPServer):
    """The stub server (see the module docstring). Start with `with StubLLM(...) as llm:` or
    `start()`/`stop()`.

    - `answers`: the script (list of strings or function of the request body), or None.
    - `model`: the id reported by `/v1/models` and in responses when a request names none.
    - `stream_chunk_chars`: size of the content pieces of a streamed answer.
    - `delay_s`: sleep before answering each completion request (latency tests).
    - `chunk_delay_s`: sleep between the content pieces of a streamed answer (a model that
      generates slowly: streaming tests see the first piece long before the last).
    """

    thread_name = "stub-llm"

    def __init__(
        self,
        answers: Script | None = None,
        *,
        model: str = DEFAULT_MODEL,
        stream_chunk_chars: int = 8,
        delay_s: float = 0.0,
        chunk_delay_s: float = 0.0,
    ) -> None:
        self.answers = answers
        self.chunk_delay_s = chunk_delay_s
        #: streamed answers whose client went away before the last piece was written
        self.disconnects = 0
        #: `time.monotonic()` when each streamed answer was completely written
        self.stream_ends: list[float] = []
        self.model = model
        self.stream_chunk_chars = max(1, stream_chunk_chars)
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- properties

    @property
    def base_url(self) -> str:
        """OpenAI-compatible API root, ending in `/v1`."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        """Chat completion requests served so far (failed ones included)."""
        with self._lock:
            return len(self.requests)

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """Answer the next `n` completion requests with HTTP `status` (retry/failure tests)."""
        with self._lock:
            self._failures.extend([status] * n)

    def reset(self) -> None:
        """Forget the requests served so far (the script position too)."""
        with self._lock:
            self.requests.clear()
            self.responses.clear()

    # ---------------------------------------------------------------- answering
    def _answer_for(self, body: dict[str, Any], index: int) -> str:
        script = self.answers
        if callable(script):
            return script(body)
        if script:
            return script[min(index, len(script) - 1)]
        schema = requested_schema(body)
        if schema is not None:
            return json.dumps(example_from_schema(schema))
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_object":
            return json.dumps({"answer": DEFAULT_ANSWER})
        return DEFAULT_ANSWER

    def _take(self, body: dict[str, Any]) -> tuple[int, str | None]:
        """Record a request; returns (status, answer or None when failing it)."""
        with self._lock:
            index = len(self.requests)
            self.requests.append(body)
            if self._failures:
                return self._failures.pop(0), None
        return 200, self._answer_for(body, index)


class _Handler(BaseHTTPRequestHandler):
    owner: StubLLM
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as model servers on asyncio (llama_cpp.server, vLLM) have: the handler writes
    # a response's headers and body apart, and on a kept-alive connection Nagle's algorithm held
    # the body until the client's delayed ACK (40 ms a request)
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(
                200,
                {"object": "list", "data": [{"id": self.owner.model, "object": "model", "owned_by": "stub"}]},
            )
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "body is not JSON"}})
            return
        status, answer = self.owner._take(body)
        if self.owner.delay_s:
            time.sleep(self.owner.delay_s)
        if answer is None:
            self._send_json(status, {"error": {"message": "stub failure", "type": "server_error"}})
            return
        model = str(body.get("model") or self.owner.model)
        usage = {
            "prompt_tokens": prompt_tokens_of(body),
            "completion_tokens": estimate_tokens(answer),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        created = int(time.time())
        cid = f"chatcmpl-stub-{self.owner.count}"
        with self.owner._lock:
            self.owner.responses.append({"model": model, "content": answer, "usage": usage})
        if body.get("stream"):
            self._stream(cid, created, model, answer, usage, body)
            return
        self._send_json(
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            },
        )

    def _stream(
        self, cid: str, created: int, model: str, answer: str, usage: dict[str, int], body: dict[str, Any]
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # no Content-Length: the body ends at EOF
        self.end_headers()
        self.close_connection = True

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> Iterator[bytes]:
            payload = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra,
            }
            yield f"data: {json.dumps(payload)}\n\n".encode()

        parts: list[bytes] = []
        parts.extend(chunk({"role": "assistant", "content": ""}))
        size = self.owner.stream_chunk_chars
        for i in range(0, len(answer), size):
            parts.extend(chunk({"content": answer[i : i + size]}))
        parts.extend(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            final = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            parts.append(f"data: {json.dumps(final)}\n\n".encode())
        parts.append(b"data: [DONE]\n\n")
        pause = self.owner.chunk_delay_s
        try:
            for i, part in enumerate(parts):
                if pause and 0 < i < len(parts) - 1:
                    time.sleep(pause)
                self.wfile.write(part)
                self.wfile.flush()
            with self.owner._lock:
                self.owner.stream_ends.append(time.monotonic())
        except (BrokenPipeError, ConnectionResetError):  # the client closed the stream early
            with self.owner._lock:
                self.owner.disconnects += 1


StubLLM.handler = _Handler
