"""The database users' declarations and what `apply` asks of MongoDB (ADR 0011). MongoDB's
admin commands are recorded by a stand-in here; tests/integration/test_database_security.py
checks the refusals on the real local database."""

import json
from pathlib import Path
from typing import Any

import pytest

from cmhl_servicekit.audit import AUDIT_DATABASE, AUDIT_LOG
from cmhl_servicekit.database_access import (
    MANAGED_BY,
    DatabaseUser,
    apply,
    read_plan,
    render_plan,
    users_from,
)

DECLARED = {
    "users": {
        "referral": {"database": "cmhl_referral", "audit": "append-and-read"},
        "followup": {"database": "cmhl_followup", "audit": "append"},
        "reporting": {"database": "cmhl_reporting", "audit": "none"},
    }
}


class _Collection:
    def __init__(self, commands: list[dict[str, Any]], name: str) -> None:
        self._commands, self._name = commands, name

    async def create_index(self, keys: list[tuple[str, int]]) -> str:
        self._commands.append({"createIndexes": self._name, "keys": keys})
        return "index"

    async def drop_index(self, name: str) -> None:
        self._commands.append({"dropIndexes": self._name, "index": name})

    def find(self, selector: dict[str, Any], projection: Any = None, limit: int = 0) -> "_Cursor":
        """An empty log: no entries written before entries were filed per person."""
        self._commands.append({"find": self._name, "filter": selector})
        return _Cursor()


class _Cursor:
    def sort(self, keys: list[tuple[str, int]]) -> "_Cursor":
        return self

    async def to_list(self, length: int | None) -> list[dict[str, Any]]:
        return []


class _Database:
    def __init__(self, commands: list[dict[str, Any]], name: str, existing: dict[str, Any]):
        self._commands, self._name, self._existing = commands, name, existing

    def __getitem__(self, collection: str) -> _Collection:
        return _Collection(self._commands, f"{self._name}.{collection}")

    async def command(self, command: Any, value: Any = None) -> dict[str, Any]:
        if command == "rolesInfo":
            return {"roles": [{"role": r} for r in self._existing["roles"]]}
        if command == "usersInfo":
            return {"users": self._existing["users"]}
        self._commands.append(command)
        return {"ok": 1}


class _Client:
    """Records the commands `apply` sends; answers rolesInfo and usersInfo from `existing`."""

    def __init__(self, existing: dict[str, Any] | None = None) -> None:
        self.commands: list[dict[str, Any]] = []
        self._existing = existing or {"roles": [], "users": []}
        self.admin = _Database(self.commands, "admin", self._existing)

    def __getitem__(self, name: str) -> _Database:
        return _Database(self.commands, name, self._existing)


PASSWORDS = {"referral": "p-referral", "followup": "p-followup", "reporting": "p-reporting"}


async def test_apply_creates_the_audit_log_its_roles_and_each_user_with_its_own_database() -> None:
    client = _Client()
    await apply(client, users_from(DECLARED), PASSWORDS)  # type: ignore[arg-type]
    assert client.commands[0] == {
        "createIndexes": f"{AUDIT_DATABASE}.{AUDIT_LOG}",
        "keys": [("person_id", 1), ("at", 1)],
    }
    roles = {c["createRole"]: c for c in client.commands if "createRole" in c}
    assert set(roles) == {"cmhl_audit_append", "cmhl_audit_read"}
    for role in roles.values():
        [privilege] = role["privileges"]
        assert privilege["resource"] == {"db": AUDIT_DATABASE, "collection": AUDIT_LOG}
        # createIndex too: a TTL index would have MongoDB delete the entries.
        forbidden = {"update", "remove", "dropCollection", "dropIndex", "createIndex"}
        assert not forbidden & set(privilege["actions"])
    users = {c["createUser"]: c for c in client.commands if "createUser" in c}
    assert users["referral"]["pwd"] == "p-referral"
    assert users["referral"]["roles"] == [
        {"role": "readWrite", "db": "cmhl_referral"},
        {"role": "cmhl_audit_append", "db": "admin"},
        {"role": "cmhl_audit_read", "db": "admin"},
    ]
    assert users["followup"]["roles"] == [
        {"role": "readWrite", "db": "cmhl_followup"},
        {"role": "cmhl_audit_append", "db": "admin"},
    ]
    assert users["reporting"]["roles"] == [{"role": "readWrite", "db": "cmhl_reporting"}]
    assert all(u["customData"] == {"managed_by": MANAGED_BY} for u in users.values())


async def test_apply_again_updates_and_drops_only_the_users_it_made_that_are_gone() -> None:
    client = _Client(
        {
            "roles": ["cmhl_audit_append", "cmhl_audit_read"],
            "users": [
                {"user": "referral", "customData": {"managed_by": MANAGED_BY}},
                {"user": "retired", "customData": {"managed_by": MANAGED_BY}},
                {"user": "dba", "customData": None},
            ],
        }
    )
    await apply(client, users_from(DECLARED), PASSWORDS)  # type: ignore[arg-type]
    verbs = [next(iter(c)) for c in client.commands]
    assert verbs.count("updateRole") == 2
    assert "createRole" not in verbs
    assert {c["updateUser"] for c in client.commands if "updateUser" in c} == {"referral"}
    assert {c["createUser"] for c in client.commands if "createUser" in c} == {
        "followup",
        "reporting",
    }
    assert [c for c in client.commands if "dropUser" in c] == [{"dropUser": "retired"}]


async def test_a_declared_user_without_a_password_stops_before_any_change() -> None:
    client = _Client()
    partial = {"referral": "p", "reporting": "p"}
    with pytest.raises(ValueError, match=r"no password for database user.*followup"):
        await apply(client, users_from(DECLARED), partial)  # type: ignore[arg-type]
    assert client.commands == []


@pytest.mark.parametrize(
    ("users", "rule"),
    [
        ({"alpha": {"database": "cmhl_a", "audit": "write"}}, "audit must be one of"),
        (
            {
                "alpha": {"database": "cmhl_x", "audit": "none"},
                "beta": {"database": "cmhl_x", "audit": "none"},
            },
            "each database belongs to one service",
        ),
        ({"alpha": {"database": AUDIT_DATABASE, "audit": "none"}}, "reached through `audit`"),
        ({"A-b": {"database": "cmhl_a", "audit": "none"}}, "lower-case letters"),
        ({"alpha": {"database": "cmhl a", "audit": "none"}}, "not a valid name"),
        ({}, "no database users declared"),
    ],
)
def test_declarations_that_break_a_rule_are_refused_naming_it(
    users: dict[str, Any], rule: str
) -> None:
    with pytest.raises(ValueError, match=rule):
        users_from({"users": users})


def test_a_plan_reads_back_as_the_declarations(tmp_path: Path) -> None:
    users = users_from(DECLARED)
    plan = tmp_path / "plan.json"
    plan.write_text(render_plan(users))
    assert read_plan(plan) == users
    assert json.loads(plan.read_text())["users"][0] == {
        "name": "followup",
        "database": "cmhl_followup",
        "audit": "append",
    }
    assert DatabaseUser("x", "cmhl_x", "append-and-read").may_read_audit
