"""The next-best-action crew: ranked actions for a rep, an account or a deal, stored as
recommendations (see `crews.nba.flow`)."""

from crews.nba.flow import run
from crews.nba.models import NbaResult
from crews.spec import CrewSpec

CREW = CrewSpec(intent="nba", run=run, output_model=NbaResult)

__all__ = ["CREW", "NbaResult", "run"]
