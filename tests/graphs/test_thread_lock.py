"""The turn lock of a thread in Redis (graphs.checkpoint.thread_lock): its lease is renewed while
the turn runs, and the renewal never outlives the turn."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import RedisError

from graphs.checkpoint import lock_key, thread_lock


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url)
    yield redis
    await redis.aclose()


def _thread() -> str:
    return f"lock-{uuid.uuid4().hex[:8]}"


async def test_the_lease_is_renewed_while_the_turn_runs(client: Redis) -> None:
    thread = _thread()
    async with thread_lock(client, thread, lease_s=0.3, wait_s=1):
        await asyncio.sleep(0.8)  # more than twice the lease
        assert await client.exists(lock_key(thread)) == 1
    assert await client.exists(lock_key(thread)) == 0


async def test_a_lost_lease_is_reported_once_and_not_renewed_again(
    client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    thread = _thread()
    with caplog.at_level(logging.WARNING, logger="graphs.checkpoint"):
        async with thread_lock(client, thread, lease_s=0.3, wait_s=1):
            await client.delete(lock_key(thread))  # the lease ran out (a stalled process)
            await asyncio.sleep(0.8)
    lost = [r for r in caplog.records if "was lost" in r.getMessage()]
    assert len(lost) == 1, caplog.text


async def test_the_renewal_ends_with_the_turn_even_when_its_cancellation_is_lost(
    client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewal whose cancel comes back as a Redis error (the cancel lost) still stops: before,
    it went on renewing the released lock for the life of the process."""
    calls = 0

    async def reacquire_losing_the_cancel(self: Lock) -> Any:
        nonlocal calls
        calls += 1
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RedisError("Timeout reading from socket") from None

    monkeypatch.setattr(Lock, "reacquire", reacquire_losing_the_cancel)
    before = len(asyncio.all_tasks())
    async with thread_lock(client, _thread(), lease_s=0.15, wait_s=1):
        await asyncio.sleep(0.1)  # the renewal is in its reacquire when the turn ends
    await asyncio.sleep(0.5)  # several lease_s / 3 periods
    assert len(asyncio.all_tasks()) == before
    assert calls == 1
