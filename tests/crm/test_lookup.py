"""crm.lookup against the Maven CRM export imported into the real PostgreSQL."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from crm.errors import NotFound
from crm.lookup import get_by_ref
from crm.models import MAX_STORED_ID, Account


def test_a_session_loads_a_looked_up_row_once(maven_db: Engine) -> None:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with Session(maven_db) as session:
        account_id = session.scalar(select(Account.id).order_by(Account.id).limit(1))
        assert account_id is not None
        event.listen(maven_db, "before_cursor_execute", record)
        try:
            name = get_by_ref(session, Account, account_id).name  # the row itself is not kept here
            gc.collect()  # the identity map alone holds rows weakly: it would forget this one
            assert get_by_ref(session, Account, account_id).name == name
            assert get_by_ref(session, Account, name).id == account_id
        finally:
            event.remove(maven_db, "before_cursor_execute", record)
    by_id = [s for s in statements if "FROM accounts" in s and "accounts.id =" in s]
    assert len(by_id) == 1, statements


@pytest.mark.parametrize("ref", [0, -1, MAX_STORED_ID + 1, 10**30])
def test_an_id_no_row_can_have_is_not_found(maven_db: Engine, ref: int) -> None:
    with Session(maven_db) as session, pytest.raises(NotFound):
        get_by_ref(session, Account, ref)
