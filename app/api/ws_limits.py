"""The chat WebSocket's guards: who may open it (Origin), what a client frame may be, and how
many turns a user may run on it.

- :func:`check_origin` (a dependency of the WebSocket router): a browser sends `Origin` on the
  handshake; one that is neither the app's own nor in `FLOWSTATE_ALLOWED_ORIGINS` is refused
  (close 1008 before accepting, which the server answers with 403), so another site cannot open
  a socket with the user's cookie. No `Origin` (a script, a CLI) is allowed: it has no cookie to
  abuse and must present a credential of its own.
- :func:`receive_text`: the next client text frame, or the error frame for a binary frame, a
  text frame over `FLOWSTATE_MAX_BODY_BYTES` or JSON nested deeper than
  `app.api.body_limit.MAX_JSON_DEPTH`; the connection stays open either way.
- :func:`limited_turn`: a turn on the socket counts like a REST turn (`app.api.limits`); over a
  limit its frames are the one 429 error frame (with `retry_after`), and the turn never runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect, WebSocketException, status

from app.api.auth import current_caller, origin_allowed
from app.api.body_limit import MAX_JSON_DEPTH, too_deep
from app.api.limits import RateLimited, limiter_of
from config.settings import get_settings

#: Error frames carry HTTP-like codes: 413 too large, 415 binary, 400 too deeply nested.
FRAME_TOO_LARGE, FRAME_BINARY, FRAME_TOO_DEEP = 413, 415, 400


async def check_origin(websocket: WebSocket) -> None:
    """Refuse the handshake (close 1008) when the browser's `Origin` is not allowed; a missing
    `Origin` passes. Raises WebSocketException."""
    origin = websocket.headers.get("origin")
    if origin is not None and not origin_allowed(websocket, origin):
        raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION, reason="origin not allowed")


async def receive_text(websocket: WebSocket) -> str | dict[str, Any]:
    """The next client frame's text, or the error frame (a dict) to answer a frame refused:
    binary, over the size limit, nested too deeply. Raises WebSocketDisconnect when the client
    has gone."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text: str | None = message.get("text")
    if text is None:
        return {
            "type": "error",
            "message": "binary frames are not accepted: send JSON as text",
            "code": FRAME_BINARY,
        }
    limit = get_settings().max_body_bytes
    # a character is at most 4 bytes of UTF-8: encode only when the text might be too long
    if len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit:
        return {
            "type": "error",
            "message": f"frame too large: at most {limit} bytes",
            "code": FRAME_TOO_LARGE,
        }
    if too_deep(text.encode("utf-8", "surrogatepass")):
        message_text = f"frame nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects"
        return {"type": "error", "message": message_text, "code": FRAME_TOO_DEEP}
    return text


async def limited_turn(
    websocket: WebSocket, stream: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    """The frames of a turn (`stream`, not yet started) within its caller's limits: the turn's own
    frames while it holds one of the caller's concurrent-turn places (released when the stream
    ends or is closed), or the single 429 error frame (with `retry_after`) when a limit refuses it,
    and then the turn never starts."""
    caller = await current_caller(websocket)
    slot = limiter_of(websocket).turn(caller)
    try:
        await slot.__aenter__()
    except RateLimited as exc:
        yield exc.frame()
        return
    try:
        async for out in stream:
            yield out
    finally:
        await slot.__aexit__(None, None, None)
