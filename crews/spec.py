"""`CrewSpec`: what a crew package exposes as `CREW` for `crews.registry` to find it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import BaseModel

from contracts import CrewRequest, CrewResponse
from crews.deps import CrewDeps

__all__ = ["CrewEntry", "CrewSpec"]

#: A crew's entry point: `await run(request, deps)` -> its response.
CrewEntry = Callable[[CrewRequest, CrewDeps], Awaitable[CrewResponse]]


@dataclass(frozen=True)
class CrewSpec:
    """A crew as the registry sees it: the `intent` it answers (its entry in
    `config/intents.yaml`), its `run` function, and `output_model`, the pydantic model of its
    `CrewResponse.data`."""

    intent: str
    run: CrewEntry
    output_model: type[BaseModel]
