"""Typed output of the general crew."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class GeneralReply(BaseModel):
    """Which kind of general message it was, and the fixed reply."""

    kind: Literal["greeting", "thanks", "help", "out_of_scope"]
    reply: str
