"""The discovery crew: account and contact research, lead qualification (BANT) with a lead score,
and factual account questions (see `crews.discovery.flow`)."""

from crews.discovery.flow import run
from crews.discovery.models import DiscoveryResult
from crews.spec import CrewSpec

CREW = CrewSpec(intent="discovery", run=run, output_model=DiscoveryResult)

__all__ = ["CREW", "DiscoveryResult", "run"]
