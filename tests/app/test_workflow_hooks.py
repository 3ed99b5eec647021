"""The chat's approved actions start the workflows they asked for, once committed."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from app.services.workflows import StartingActions
from contracts import ActionMeta, ProposedAction
from contracts.notifications import Notification


class _Log:
    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        self.recorded: list[str] = []

    def execute(self, action: ProposedAction, meta: ActionMeta) -> dict[str, Any]:
        return self.result

    def record(self, kind: str, payload: dict[str, Any], meta: ActionMeta) -> None:
        self.recorded.append(kind)


class _Workflows:
    def __init__(self) -> None:
        self.started: list[list[str]] = []

    async def start(self, workflow_ids: list[str]) -> None:
        self.started.append(workflow_ids)


async def test_an_executed_action_starts_its_workflows_on_the_loop() -> None:
    action = ProposedAction(kind="create_reminder", summary="r", params={})
    meta = ActionMeta(actor="ann", thread_id="t", decision="approve")
    workflows = cast(Any, _Workflows())
    log = _Log({"reminder_id": 3, "workflows": ["reminder-3-abcd1234"]})
    actions = StartingActions(log, workflows, asyncio.get_running_loop())
    result = await asyncio.to_thread(actions.execute, action, meta)  # as the approve node runs it
    assert result["reminder_id"] == 3
    await asyncio.sleep(0.05)
    assert workflows.started == [["reminder-3-abcd1234"]]
    await asyncio.to_thread(
        StartingActions(_Log({}), workflows, asyncio.get_running_loop()).execute, action, meta
    )
    await asyncio.sleep(0.05)
    assert workflows.started == [["reminder-3-abcd1234"]]  # nothing asked, nothing started
    actions.record("action.rejected", {}, meta)
    assert log.recorded == ["action.rejected"]


def test_a_notification_is_for_its_person_by_name_or_rep_id() -> None:
    n = Notification(recipient="Ann Alpha", rep_id=7, kind="reminder", title="t")
    assert n.is_for("ann alpha") and n.is_for(" Ann Alpha ") and n.is_for("7")
    assert not n.is_for("Bob") and not n.is_for(None) and not n.is_for("8")
