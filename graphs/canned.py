"""Canned replies for the `general` intent: greetings, thanks, help (what Flowstate can do) and
polite refusals of questions outside sales and the CRM. Not a crew: no LLM call and no CRM fact,
the replies are fixed text, so nothing can be invented here and the turn costs milliseconds.
The graph's `general` node answers with :func:`answer`; the reply still goes through the guard.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from contracts import CrewRequest, CrewResponse

__all__ = ["HELP", "OUT_OF_SCOPE", "GeneralReply", "answer", "reply_for"]


class GeneralReply(BaseModel):
    """Which kind of general message it was, and the fixed reply (`CrewResponse.data` of a
    general turn, checked by the guards' schema validator)."""

    kind: Literal["greeting", "thanks", "help", "out_of_scope"]
    reply: str


GREETING = re.compile(r"^\s*(hi|hello|hey|hiya|howdy|good (morning|afternoon|evening)|greetings|yo)\b", re.I)
THANKS = re.compile(r"\b(thanks|thank you|thx|cheers|that'?s all|bye|goodbye|see you)\b", re.I)
HELP_RX = re.compile(
    r"\b(help|what can you do|what do you do|how (do|can) (i|you)|capabilit\w*|features?|"
    r"who are you|what are you)\b",
    re.I,
)

HELP = (
    "I'm Flowstate, your sales assistant on top of the CRM. I can:\n"
    "- answer pipeline questions: deal counts, won revenue, win rates, cycle times, forecasts, stuck deals;\n"
    "- research accounts, contacts and reps, and qualify leads (BANT) with a lead score;\n"
    "- draft outreach, follow-ups, proposals and answers to discount requests within policy;\n"
    "- plan onboarding for won deals and write client status reports;\n"
    "- recommend your next best actions;\n"
    "- move deals, create reminders and tasks, and queue emails, after you approve each one."
)

OUT_OF_SCOPE = (
    "I can only help with sales work on your CRM: accounts, deals, the pipeline, outreach and "
    'next steps. Ask me, for example, "What\'s our win rate this quarter?" or "What should I do '
    'next with Isdom?"'
)


def reply_for(message: str) -> GeneralReply:
    """The fixed reply for a general message: help, thanks, greeting (checked in that order),
    else out of scope."""
    if HELP_RX.search(message):
        return GeneralReply(kind="help", reply=HELP)
    if THANKS.search(message):
        return GeneralReply(
            kind="thanks", reply="You're welcome. Ask me anytime about your accounts and deals."
        )
    if GREETING.search(message):
        return GeneralReply(
            kind="greeting", reply="Hi! How can I help with your accounts and deals today?\n\n" + HELP
        )
    return GeneralReply(kind="out_of_scope", reply=OUT_OF_SCOPE)


def answer(request: CrewRequest) -> CrewResponse:
    """The response to a general message: the fixed reply, `data` = its :class:`GeneralReply`
    (no LLM call, no CRM access; `llm_calls` 0)."""
    out = reply_for(request.message)
    return CrewResponse(reply=out.reply, data=out.model_dump())
