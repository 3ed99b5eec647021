"""Notifications: what a workflow tells a person as it happens (a reminder fell due, a draft
waits for approval), published on Redis and sent as a `notification` frame to that person's open
chat WebSockets. The inbox item is the durable record; the frame is its live echo."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

#: The Redis pub/sub channel every app process listens on.
NOTIFICATIONS_CHANNEL = "flowstate:notifications"


class Notification(BaseModel):
    """`recipient` is the person's name; `rep_id` their rep id when they are a rep. `kind` is the
    inbox item's kind, `item_id` the item to open or decide."""

    type: Literal["notification"] = "notification"
    recipient: str
    rep_id: int | None = None
    kind: str
    title: str
    body: str = ""
    item_id: int | None = None
    reminder_id: int | None = None
    deal_id: int | None = None

    def is_for(self, user: str | None) -> bool:
        """Whether a connection of `user` (a rep's name or id, as the chat client names itself)
        should see this notification (case-insensitive name match, or the rep id)."""
        if not user:
            return False
        key = user.strip().lower()
        return key == self.recipient.strip().lower() or (self.rep_id is not None and key == str(self.rep_id))
