"""Live notifications for the chat WebSockets of this process: one Redis subscription to
`contracts.notifications.NOTIFICATIONS_CHANNEL`, fanned out to the connections of the person
each notification is for. A notification published while nobody of that person is connected is
not kept here: the inbox item it echoes is the durable record."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aredis
from pydantic import ValidationError

from contracts.notifications import NOTIFICATIONS_CHANNEL, Notification

log = logging.getLogger(__name__)

#: Notifications queued per connection before the oldest are dropped (a stalled client).
QUEUE_SIZE = 100
#: Seconds between attempts to subscribe again after Redis went away.
RESUBSCRIBE_S = 1.0


class NotificationHub:
    """Connections register the user they speak for and read their notifications from a queue."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._queues: dict[asyncio.Queue[Notification], str] = {}
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    def start(self) -> None:
        """Start listening (a task on the running loop)."""
        self._task = asyncio.create_task(self._listen(), name="notifications")

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def register(self, user: str) -> asyncio.Queue[Notification]:
        """A queue of the notifications for `user` (see `Notification.is_for`)."""
        queue: asyncio.Queue[Notification] = asyncio.Queue(QUEUE_SIZE)
        self._queues[queue] = user
        return queue

    def unregister(self, queue: asyncio.Queue[Notification]) -> None:
        self._queues.pop(queue, None)

    def deliver(self, notification: Notification) -> int:
        """Put `notification` on the queues of its person's connections; how many got it."""
        count = 0
        for queue, user in list(self._queues.items()):
            if notification.is_for(user):
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(notification)
                count += 1
        return count

    async def _listen(self) -> None:
        while True:
            client = aredis.Redis.from_url(self.redis_url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(NOTIFICATIONS_CHANNEL)
                    self.subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            self.deliver(Notification.model_validate_json(message["data"]))
                        except ValidationError as exc:
                            log.warning("a malformed notification was dropped: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                log.warning("notifications: Redis subscription lost (%r); subscribing again", exc)
                await asyncio.sleep(RESUBSCRIBE_S)
            finally:
                await client.aclose()
