"""The chat graph: one LangGraph `StateGraph` per conversation turn, checkpointed by thread id.

    START -> resolve_entities -> classify_intent -> {discovery | closing | delivery | pipeline |
    nba | general} -> guard -> propose -> approve (interrupt) -> respond -> END
                        ^            |  \\-> respond (no action proposed, or the turn failed)
                        '-- reask ---'

The guard sends a response it wants re-asked back to the crew node of the turn's intent (with
`attempt` and `feedback` in the state, see `graphs.guarding`), so the loop shows in the graph's
drawing and in a trace as one more crew run and guard check. `general` is answered with canned
replies (`graphs.canned`), not a crew, and is guarded like the crews' answers.

`build_graph(checkpointer)` compiles it; the runtime context is a
:class:`graphs.context.ChatContext` (`context_schema`), which every run must pass. `graph`
(module level, no checkpointer, no context) is what `langgraph.json` exports for LangGraph
tooling (drawing, `langgraph dev`); the app compiles its own with the Redis saver and passes the
context it built (`app.services.chat`).
"""

from __future__ import annotations

from collections.abc import Iterable

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from contracts import INTENTS, ActionResult, Intent
from crews.registry import crew_intents
from graphs import nodes
from graphs.context import ChatContext
from graphs.state import ChatState

#: Types kept in the state beyond `graphs.checkpoint.STATE_TYPES` (pass them to the saver's
#: serializer so they come back as models, not dicts).
STATE_EXTRA_TYPES: tuple[type, ...] = (ActionResult,)

#: Name of the compiled graph (root run name in traces).
GRAPH_NAME = "flowstate_chat"


def build_graph(
    checkpointer: BaseCheckpointSaver[str] | None = None,
    *,
    intents: Iterable[Intent] = INTENTS,
) -> CompiledStateGraph[ChatState, ChatContext, ChatState, ChatState]:
    """Compile the chat graph with a node per intent of `intents`: a crew node for the intents
    `config/intents.yaml` gives a crew, the canned replies for the others. `checkpointer`: a
    LangGraph saver (Redis in the app, None for in-memory/tooling use); without one, interrupts
    cannot be resumed."""
    builder = StateGraph(ChatState, context_schema=ChatContext)
    builder.add_node("resolve_entities", nodes.resolve_entities)
    builder.add_node("classify_intent", nodes.classify_intent)
    answer_nodes = list(intents)
    crewed = set(crew_intents())
    for intent in answer_nodes:
        if intent not in crewed:
            builder.add_node(intent, nodes.make_canned_node(intent))  # type: ignore[call-overload,arg-type,unused-ignore]
        else:
            # add_node's overloads cannot infer the state type of a factory-made node (mypy
            # reports a call-overload or, without its cache, an arg-type error); it is typed.
            builder.add_node(intent, nodes.make_crew_node(intent))  # type: ignore[call-overload,arg-type,unused-ignore]
    builder.add_node("guard", nodes.guard)
    builder.add_node("propose", nodes.propose)
    builder.add_node("approve", nodes.approve)
    builder.add_node("respond", nodes.respond)

    builder.add_edge(START, "resolve_entities")
    builder.add_edge("resolve_entities", "classify_intent")
    builder.add_conditional_edges("classify_intent", nodes.route_intent, [*answer_nodes, "respond"])
    for intent in answer_nodes:
        builder.add_edge(intent, "guard")
    # a re-ask goes back to the node that answered (canned replies answer the same again)
    builder.add_conditional_edges("guard", nodes.route_after_guard, [*answer_nodes, "propose", "respond"])
    builder.add_edge("propose", "approve")
    builder.add_edge("approve", "respond")
    builder.add_edge("respond", END)
    return builder.compile(checkpointer=checkpointer, name=GRAPH_NAME)


def make_graph() -> CompiledStateGraph[ChatState, ChatContext, ChatState, ChatState]:
    """Factory for LangGraph tooling (`langgraph.json`): the graph without a checkpointer."""
    return build_graph()


graph = make_graph()
