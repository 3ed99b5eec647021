"""The crews that answer a chat turn, one folder per crew (see `crews.registry`).

Kept light: importing `crews` (or a crew package) does not import CrewAI."""

from crews.deps import CrewDeps

__all__ = ["CrewDeps"]
