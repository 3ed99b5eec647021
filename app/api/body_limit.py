"""Request bodies within bounds: a size limit and a JSON nesting limit, in one pure ASGI middleware.

A plain ASGI class rather than Starlette's `BaseHTTPMiddleware`: it wraps `receive` and nothing
else, so WebSockets, streamed responses and background tasks pass through untouched.

- Size: `FLOWSTATE_MAX_BODY_BYTES` (64 KiB) for every request, or the larger limit a path is
  given (`by_path`: POST /api/documents, `app.api.routes.documents.MAX_BODY_BYTES`). A
  `Content-Length` above the limit is answered 413 before the app runs; a body sent without one
  (chunked) is counted while it streams in and refused with 413 as soon as it passes the limit.
  (FastAPI's own `max_body_size` answers an over-long `Content-Length` with a text/plain
  "Content Too Large" whatever the app's handlers say; the API's errors are JSON.)
- Nesting: a JSON body (`application/json`, `*+json`, or no content type, which FastAPI also
  reads as JSON) nested deeper than `MAX_JSON_DEPTH` arrays/objects is refused with 400. Python's
  JSON parser and every recursive walk after it (validation, the `jsonb` checks of
  `contracts.fields`, encoders) hit the interpreter's recursion limit on a few hundred to a few
  thousand brackets, which would answer 500. The chat WebSocket checks its frames with
  :func:`too_deep`.

Refusals while streaming are raised as `HTTPException` from inside `receive`: FastAPI lets an
HTTPException out of its body parsing unchanged, so the app's own handler writes the usual
`{"detail"}` body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Deepest nesting of arrays and objects accepted in a JSON body or chat frame. The API's bodies
#: use a handful of levels; free-form metadata and event payloads get the rest.
MAX_JSON_DEPTH = 32

_STRUCTURE = re.compile(rb'[\[\]{}"\\]')
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


class JsonDepth:
    """Tracks the nesting depth of a JSON text fed in chunks, without parsing it: brackets
    inside strings (and escaped quotes) do not count. `feed` returns True once the depth has
    gone past `limit`. Malformed JSON is the parser's business, not this scanner's."""

    def __init__(self, limit: int = MAX_JSON_DEPTH) -> None:
        self.limit = limit
        self.depth = 0
        self._in_string = False
        self._escaped = False  # the previous chunk ended with a backslash inside a string

    def feed(self, chunk: bytes) -> bool:
        """Scan the next chunk; True when the text is nested deeper than the limit."""
        skip = 0 if self._escaped else -1
        self._escaped = False
        for match in _STRUCTURE.finditer(chunk):
            at = match.start()
            if at == skip:
                continue
            char = chunk[at]
            if self._in_string:
                if char == _BACKSLASH:
                    skip = at + 1
                    self._escaped = skip == len(chunk)
                elif char == _QUOTE:
                    self._in_string = False
            elif char == _QUOTE:
                self._in_string = True
            elif char in _OPEN:
                self.depth += 1
                if self.depth > self.limit:
                    return True
            elif char in _CLOSE:
                self.depth -= 1
        return False


def too_deep(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when the JSON `text` nests arrays/objects deeper than `limit`."""
    return JsonDepth(limit).feed(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)


def too_deep_detail(limit: int = MAX_JSON_DEPTH) -> str:
    """The 400 detail of JSON nested deeper than `limit`."""
    return f"JSON nested too deeply: at most {limit} levels of arrays and objects"


def too_large_detail(limit: int) -> str:
    """The 413 detail of a body over `limit` bytes."""
    return f"request body too large: at most {limit} bytes here"


def _is_json(headers: Headers) -> bool:
    content_type = headers.get("content-type")
    if content_type is None:
        return True  # FastAPI reads a body without a content type as JSON
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class BodyLimit:
    """ASGI middleware: bodies over `max_bytes` (or over the limit of the longest `by_path`
    prefix the path starts with) get 413 `{"detail"}`; JSON bodies nested deeper than
    `MAX_JSON_DEPTH` get 400 `{"detail"}`. Other scopes (websocket, lifespan) pass through."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, by_path: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # longest prefix first, so the most specific limit wins
        self.by_path = sorted((by_path or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        """The body limit of `path`, in bytes."""
        for prefix, limit in self.by_path:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            await JSONResponse({"detail": too_large_detail(limit)}, status_code=413)(scope, receive, send)
            return
        depth = JsonDepth() if _is_json(headers) else None
        received = 0
        refusal: HTTPException | None = None

        async def checked_receive() -> Message:
            nonlocal received, refusal
            message = await receive()
            if message["type"] == "http.request":
                body: bytes = message.get("body", b"")
                received += len(body)
                if received > limit:
                    refusal = HTTPException(413, too_large_detail(limit))
                elif depth is not None and depth.feed(body):
                    refusal = HTTPException(400, too_deep_detail(depth.limit))
                if refusal is not None:
                    raise refusal
            return message

        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, checked_receive, watched_send)
        except HTTPException as exc:
            # raised from `receive` where nothing turned it into a response (a body read outside
            # FastAPI's parsing): answer it here
            if started or exc is not refusal:
                raise
            await JSONResponse({"detail": exc.detail}, status_code=exc.status_code)(scope, receive, send)
