"""Rate limits per caller and a cap on concurrent chat turns: 429 with `Retry-After` beyond them.

The counting is the `limits` library's (moving window), stored in Redis when the app has one (so
every worker process and instance shares the counts), in process memory otherwise:

- every /api request, per user: `FLOWSTATE_RATE_LIMIT` (600/minute), :func:`rest_limit`;
- chat turns (REST `POST /api/chat`, resume, and each message or decision on the WebSocket), per
  user: `FLOWSTATE_CHAT_RATE_LIMIT` (30/minute), and at most `FLOWSTATE_MAX_TURNS_PER_USER` (2)
  turns running at once: :data:`ChatTurn` (HTTP) and :meth:`Limiter.turn` (WebSocket);
- sign-in attempts (`POST /login`), per client address: `FLOWSTATE_LOGIN_RATE_LIMIT`
  (10/minute), :func:`login_limit`: the route is open, so the address is the only key, and the
  limit is what makes guessing passwords slow.

When the counters' Redis does not answer (restarting, say), requests are let through and a
warning is logged: a limit that fails closed would turn a Redis restart into an outage of the
whole API, and the chat itself reconnects to Redis on its own.

A user is keyed by username (the built-in token's admin is one user); see :func:`caller_key`.
The app's `Limiter` lives in `app.state.limiter` (`create_app` builds it; :meth:`Limiter.close`
releases its Redis connections).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Depends, HTTPException, Request
from fastapi.requests import HTTPConnection
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from app.api.auth import CallerDep

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from config.settings import Settings
    from contracts.identity import Caller

log = logging.getLogger(__name__)

#: What a counter store that does not answer raises (the request is then let through).
STORE_ERRORS = (RedisError, StorageError, ConnectionError, OSError, TimeoutError)

#: Seconds a client refused for too many concurrent turns is told to wait: a turn takes seconds.
TURN_RETRY_AFTER_S = 2
#: Where the counters live in Redis (beside the chat's checkpoints).
KEY_PREFIX = "flowstate:limits"


class RateLimited(Exception):
    """A limit is reached: `message` says which, `retry_after` in whole seconds (>= 1)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def http(self) -> HTTPException:
        """The 429 of this refusal, with `Retry-After`."""
        return HTTPException(429, detail=self.message, headers={"Retry-After": str(self.retry_after)})

    def frame(self) -> dict[str, Any]:
        """The WebSocket error frame of this refusal (the connection stays open)."""
        return {"type": "error", "message": self.message, "code": 429, "retry_after": self.retry_after}


def caller_key(caller: Caller) -> str:
    """The key a caller's limits are counted under: their username."""
    return f"user:{caller.username}"


def client_key(conn: HTTPConnection) -> str:
    """The key of an unauthenticated request: the client's address (behind a proxy, run uvicorn
    with `--forwarded-allow-ips` so this is the real client's)."""
    return f"ip:{conn.client.host if conn.client else 'unknown'}"


#: Take one of a key's places if one is free, in one server-side step: INCR the count, renew its
#: expiry (it frees the places of a process that died mid-turn; turns end long before it) and,
#: over the cap, give the place back. Returns 1 when a place was taken, else 0. KEYS: the count;
#: ARGV: the cap, the expiry in seconds. One command where a MULTI/INCR/EXPIRE/EXEC took four,
#: and no other process ever reads a count over the cap.
_ENTER = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if count > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return 1
"""


class _TurnCount:
    """How many turns each key has running: in memory (one process) or in Redis (shared)."""

    def __init__(self, redis: Redis | None, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.local: dict[str, int] = {}
        # run by its SHA (EVALSHA); redis-py loads it when Redis answers NOSCRIPT
        self._enter = redis.register_script(_ENTER) if redis is not None else None

    async def enter(self, key: str, most: int) -> bool:
        if self.redis is None:
            # no await between the check and the increment: atomic on the event loop
            if self.local.get(key, 0) >= most:
                return False
            self.local[key] = self.local.get(key, 0) + 1
            return True
        assert self._enter is not None
        taken = await self._enter(keys=[f"{KEY_PREFIX}:turns:{key}"], args=[most, self.ttl_s])
        return bool(int(taken))

    async def leave(self, key: str) -> None:
        if self.redis is None:
            left = self.local.get(key, 0) - 1
            if left > 0:
                self.local[key] = left
            else:
                self.local.pop(key, None)
            return
        await self.redis.decr(f"{KEY_PREFIX}:turns:{key}")


class Limiter:
    """The rate limits and the turn cap of one app, from `settings`; counts in Redis at
    `redis_url`, else in memory. Builds no connection until first used."""

    def __init__(self, settings: Settings, redis_url: str | None = None) -> None:
        self.rest: list[RateLimitItem] = parse_many(settings.rate_limit)
        self.chat: list[RateLimitItem] = parse_many(settings.chat_rate_limit)
        self.login: list[RateLimitItem] = parse_many(settings.login_rate_limit)
        self.max_turns = settings.max_turns_per_user
        redis: Redis | None = None
        storage: Storage
        if redis_url is None:
            storage = MemoryStorage()
        else:
            from redis.asyncio import Redis

            # redis-py's asyncio client (installed already), not the default coredis
            # limits names a socket "redis+unix://" (the embedded Redis listens on one)
            scheme = "async+redis+" if redis_url.startswith("unix:") else "async+"
            storage = RedisStorage(scheme + redis_url, implementation="redispy", key_prefix=KEY_PREFIX)
            redis = Redis.from_url(redis_url)
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(storage)
        self._redis = redis
        self.turns = _TurnCount(redis, ttl_s=int(settings.turn_deadline_s) + 60)

    async def hit(self, items: list[RateLimitItem], kind: str, key: str) -> None:
        """Count one request of `kind` ("api", "chat", "login") for `key` against each of
        `items`. Raises RateLimited (with the seconds until the window has room) when one of
        them is used up."""
        for item in items:
            try:
                allowed = await self.strategy.hit(item, kind, key)
                stats = None if allowed else await self.strategy.get_window_stats(item, kind, key)
            except STORE_ERRORS as exc:
                log.warning("rate limit not checked (the counters' store does not answer): %s", exc)
                return
            if stats is not None:
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(f"too many {_WHAT[kind]}: at most {item}", retry_after)

    @asynccontextmanager
    async def turn(self, caller: Caller) -> AsyncIterator[None]:
        """Hold one of the caller's concurrent-turn places for the block, and count the turn
        against the chat rate limit. Raises RateLimited, before the block runs, when the caller
        already has `max_turns` turns running (not counted then) or is over the rate."""
        key = caller_key(caller)
        counted = True
        try:
            entered = await self.turns.enter(key, self.max_turns)
        except STORE_ERRORS as exc:
            log.warning("turn cap not checked (the counters' store does not answer): %s", exc)
            entered, counted = True, False
        if not entered:
            raise RateLimited(
                f"too many chat turns at once: at most {self.max_turns} running per user; "
                "wait for one to finish",
                TURN_RETRY_AFTER_S,
            )
        try:
            await self.hit(self.chat, "chat", key)
            yield
        finally:
            try:
                if counted:
                    await self.turns.leave(key)
            except STORE_ERRORS as exc:  # the key's expiry frees the place
                log.warning("turn place not released (the counters' store does not answer): %s", exc)

    async def close(self) -> None:
        """Release the Redis connections (the app's shutdown)."""
        if self._redis is not None:
            await self._redis.aclose()
        bridge = getattr(self.storage, "bridge", None)
        storage_client = getattr(bridge, "storage", None)
        if storage_client is not None and hasattr(storage_client, "aclose"):
            await storage_client.aclose()


_WHAT = {"api": "requests", "chat": "chat turns", "login": "sign-in attempts"}


def limiter_of(conn: HTTPConnection) -> Limiter:
    """The app's limiter (`app.state.limiter`)."""
    limiter: Limiter = conn.app.state.limiter
    return limiter


async def rest_limit(request: Request, caller: CallerDep) -> None:
    """Dependency of every /api route: one request of the caller's `FLOWSTATE_RATE_LIMIT`.
    Raises HTTPException 429 (Retry-After) when used up."""
    limiter = limiter_of(request)
    try:
        await limiter.hit(limiter.rest, "api", caller_key(caller))
    except RateLimited as exc:
        raise exc.http() from None


async def login_limit(request: Request) -> None:
    """Dependency of `POST /login`: one attempt of the client address's
    `FLOWSTATE_LOGIN_RATE_LIMIT`. Raises HTTPException 429 (Retry-After) when used up."""
    limiter = limiter_of(request)
    try:
        await limiter.hit(limiter.login, "login", client_key(request))
    except RateLimited as exc:
        raise exc.http() from None


async def chat_turn(request: Request, caller: CallerDep) -> AsyncIterator[None]:
    """Dependency of the REST chat turns: counts the turn and holds one of the caller's
    concurrent-turn places while it runs. Raises HTTPException 429 (Retry-After)."""
    limiter = limiter_of(request)
    try:
        slot = limiter.turn(caller)
        await slot.__aenter__()
    except RateLimited as exc:
        raise exc.http() from None
    try:
        yield
    finally:
        await slot.__aexit__(None, None, None)


#: `dependencies=[ChatTurn]` on a route that runs a chat turn.
ChatTurn = Depends(chat_turn)
#: `dependencies=[LoginLimit]` on the sign-in route.
LoginLimit = Depends(login_limit)
#: `dependencies=[RestLimit]` on the /api routers.
RestLimit = Depends(rest_limit)
