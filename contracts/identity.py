"""Who is asking: the caller of a request or a chat turn, as the credential says (never the body).

A `Caller` is resolved once per request (`app.api.auth`) from a session cookie, a per-user API
token or the built-in admin token (`FLOWSTATE_API_TOKEN`), and travels as plain data to the
routes, the chat graph and the tools, which filter and authorize by it:

- `rep`: reads their own deals and the accounts those deals touch; acts on their own deals;
- `manager`: reads and acts for their team (the reps whose `manager` is their name);
- `admin`: reads and acts on everything.

`read_rep_ids` / `act_rep_ids` are the sales reps whose deals the caller may read / act on;
None means every rep. `config/access.yaml` may widen reading (a small team that shares its
pipeline) but never acting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["admin", "manager", "rep"]
ROLES: tuple[Role, ...] = ("admin", "manager", "rep")


class Caller(BaseModel):
    """The identity a request acts as. `user_id` is None only for the built-in admin of
    `FLOWSTATE_API_TOKEN`; `rep_id` / `rep_name` are set for a rep, `manager_name` for a
    manager (the name the reps' `manager` field carries)."""

    model_config = ConfigDict(frozen=True)

    user_id: int | None = None
    username: str
    display_name: str
    role: Role
    rep_id: int | None = None
    rep_name: str | None = None
    manager_name: str | None = None
    read_rep_ids: frozenset[int] | None = Field(None, description="None: every rep")
    act_rep_ids: frozenset[int] | None = Field(None, description="None: every rep")

    @property
    def actor(self) -> str:
        """The name events and approvals record: the user's username (`admin` for the built-in
        admin of the API token)."""
        return self.username

    @property
    def person(self) -> str:
        """The name the CRM knows this person by (inbox recipient, reminder owner): the rep's or
        manager's name, else the display name."""
        return self.rep_name or self.manager_name or self.display_name

    def may_read_rep(self, rep_id: int | None) -> bool:
        """True when deals owned by `rep_id` are readable (an unowned deal: admins only)."""
        if self.read_rep_ids is None:
            return True
        return rep_id is not None and rep_id in self.read_rep_ids

    def may_act_for_rep(self, rep_id: int | None) -> bool:
        """True when deals owned by `rep_id` may be changed by this caller."""
        if self.act_rep_ids is None:
            return True
        return rep_id is not None and rep_id in self.act_rep_ids


#: The identity of work no person started (workflows, schedules, the CLI on the server).
SYSTEM = Caller(username="system", display_name="Flowstate", role="admin")
