"""Proposing an action on a deal for approval (the web board's "move this deal", a client's
proposal): checked at once, filed in the proposer's inbox, run once when approved there.

The check is the action itself, run inside a savepoint that is always rolled back: the very rules
the approval will apply (the pipeline's entry rules of `config/pipeline.yaml`, a closed deal, the
stage it is already in, the params of the kind) refuse the proposal up front, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from config.files import load_pipeline
from contracts import ProposedAction
from contracts.identity import Caller
from crm import access, inbox, repository
from crm.schemas import DealOut, InboxItemOut, ProposalCreate
from tools import actions

__all__ = ["propose"]


def _title(deal: DealOut, stage_text: str) -> str:
    """What the inbox card says: "Move D0000005 (Betaco) to Qualified"."""
    name = deal.external_id + (f" ({deal.account_name})" if deal.account_name else "")
    stage = load_pipeline().resolve(stage_text)
    return f"Move {name} to {stage.name if stage is not None else stage_text}"


def propose(session: Session, caller: Caller, deal_id: int, proposal: ProposalCreate) -> InboxItemOut:
    """File `proposal` on deal `deal_id` as an "action" item in the caller's inbox (recipient: the
    caller's name; `rep_id`: the deal's rep) and return it. For `move_stage`, `reason` is taken as
    the `note` when there is none.

    Raises NotFound("deal") outside the caller's reading, Forbidden when they do not act for the
    deal's rep, and whatever the action would raise now: Inconsistent(rule) (a 409 naming it)
    for an entry rule of the target stage not met or an unknown stage, Conflict for a closed deal
    or the stage it is in.
    """
    access.check_deal_action(session, caller, deal_id)
    deal = repository.get_deal(session, deal_id)
    params: dict[str, Any] = proposal.params.model_dump(mode="json", exclude_none=True)
    reason = params.pop("reason", None)
    if reason is not None:
        params.setdefault("note", reason)
    params["deal_id"] = deal_id
    title = _title(deal, proposal.params.stage)
    action = ProposedAction(kind=proposal.kind, summary=title, params=params)
    savepoint = session.begin_nested()
    try:
        actions.execute(session, action, caller.actor)
    finally:
        savepoint.rollback()
        session.expire_all()
    item, _created = inbox.file_item(
        session,
        recipient=caller.person,
        kind="action",
        title=title,
        body=f"Proposed by {caller.display_name}.",
        rep_id=deal.rep_id,
        action=action.model_dump(mode="json"),
        deal_id=deal_id,
        account_id=deal.account_id,
    )
    return item
