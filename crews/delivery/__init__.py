"""The delivery crew: onboarding plans and client status reports for won deals (see
`crews.delivery.flow`)."""

from crews.delivery.flow import run
from crews.delivery.models import DeliveryResult
from crews.spec import CrewSpec

CREW = CrewSpec(intent="delivery", run=run, output_model=DeliveryResult)

__all__ = ["CREW", "DeliveryResult", "run"]
