"""The closing crew: outreach, follow-up, proposal and negotiation drafts, and discount requests
checked against the sales policy (see `crews.closing.flow`)."""

from crews.closing.flow import run
from crews.closing.models import ClosingResult
from crews.spec import CrewSpec

CREW = CrewSpec(intent="closing", run=run, output_model=ClosingResult)

__all__ = ["CREW", "ClosingResult", "run"]
